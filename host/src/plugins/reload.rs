//! Building the next registry from a changed manifest, next to the one that
//! is serving.
//!
//! Plugins whose file content, configuration and manifest entry are
//! unchanged are carried over as they are (same instance, same counters);
//! everything else is loaded fresh. Nothing is swapped here: the caller gets
//! a complete, checked registry or the first error, and the serving
//! registry is never touched by a failed reload.

use std::{collections::BTreeSet, sync::Arc};

use plughost_loader::{check_pin, inspect, instantiate, tracing_host};

use super::{PluginHandle, Registry, RegistryError};
use crate::manifest::Manifest;

/// What a reload changed, by plugin name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    /// Plugins that were not served before.
    pub added: Vec<String>,
    /// Plugins no longer served.
    pub removed: Vec<String>,
    /// Plugins served by a new instance (new file content or configuration).
    pub replaced: Vec<String>,
    /// Plugins carried over untouched.
    pub unchanged: Vec<String>,
}

impl Changes {
    /// True when the reload changes nothing that is served.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.replaced.is_empty()
    }
}

/// Builds the registry `manifest` describes, reusing plugins of `current`
/// that did not change. Errors leave `current` as it was.
pub fn rebuild(
    current: &Registry,
    manifest: &Manifest,
) -> Result<(Registry, Changes), RegistryError> {
    let mut next = Registry::new();
    for entry in &manifest.plugins {
        // Hash once: the hash decides reuse, is checked against the pin, and
        // is what a new instance is loaded under.
        // Every file is checked again (trust, settled), even one that is
        // carried over: a problem is reported at every reload.
        let spec = entry.spec(&manifest.host);
        let file = inspect(&spec)?;
        check_pin(&entry.path, entry.sha256.as_deref(), &file.sha256)?;
        let reusable = current.plugins().iter().find(|p| {
            p.file() == entry.path && p.sha256() == file.sha256 && p.config() == &entry.config
        });
        let plugin = match reusable {
            Some(p) => Arc::clone(p),
            None => Arc::new(instantiate(&spec, file, tracing_host(&entry.path))?),
        };
        next.add_shared(Arc::clone(&plugin), &entry.methods, entry.threads)?;
        next.set_services(&plugin, &entry.services)?;
    }
    next.seal(manifest.host.max_plugin_threads)?;
    next.keep_limiters_from(current);
    let changes = diff(current, &next);
    Ok((next, changes))
}

/// Compares two registries by plugin name and instance identity.
pub fn diff(old: &Registry, new: &Registry) -> Changes {
    let names = |r: &Registry| {
        r.plugins()
            .iter()
            .map(|p| p.name().to_owned())
            .collect::<BTreeSet<_>>()
    };
    let (old_names, new_names) = (names(old), names(new));
    let find = |r: &Registry, name: &str| r.plugins().iter().find(|p| p.name() == name).cloned();
    let mut changes = Changes {
        added: new_names.difference(&old_names).cloned().collect(),
        removed: old_names.difference(&new_names).cloned().collect(),
        ..Changes::default()
    };
    for name in old_names.intersection(&new_names) {
        let same = match (find(old, name), find(new, name)) {
            (Some(a), Some(b)) => a.id() == b.id() && same_overrides(old, new, &a),
            _ => false,
        };
        if same {
            changes.unchanged.push(name.clone());
        } else {
            changes.replaced.push(name.clone());
        }
    }
    changes
}

/// True when `plugin` is served the same way in both: every method on the
/// same route with the same limits, and the same thread share.
fn same_overrides(old: &Registry, new: &Registry, plugin: &PluginHandle) -> bool {
    plugin
        .descriptor()
        .methods
        .iter()
        .all(|m| match (old.method(&m.name), new.method(&m.name)) {
            (Some(a), Some(b)) => {
                a.route == b.route && a.timeout == b.timeout && a.concurrency == b.concurrency
            }
            _ => false,
        })
        && old.threads_of(plugin.name()) == new.threads_of(plugin.name())
}
