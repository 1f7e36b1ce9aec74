//! A stateful example plugin: a key-value store with TTLs, prefix scans,
//! a long-poll that honours its call's cancellation, a tracked compactor,
//! and state that survives upgrades (`state_json`).
//!
//! It is the plugin of the guide's stateful chapter
//! (`docs/writing-plugins.md`) and of the host's upgrade-under-load test.
//!
//! Config keys:
//! - `compact_ms` (default 1000): how often the compactor drops expired keys;
//! - `compactor_panics` (default 0): the compactor panics on its first N
//!   runs (for the host's supervision tests);
//! - `refuse_import` (default false): the instance refuses any state handed
//!   to it (for the host's refused-upgrade tests).
//!
//! The compile-time `KVSTORE_BUILD_TAG` shows in `kv_build`, so tests can
//! tell two builds apart.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use plughost_plugin_api::prelude::*;

/// One stored value and when it expires (Unix milliseconds), if it does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(crate = "plughost_plugin_api::serde")]
pub struct Entry {
    value: String,
    expires_at_ms: Option<u64>,
}

/// The store every method of one instance shares.
#[derive(Debug, Default, Clone)]
pub struct Store(Arc<Mutex<BTreeMap<String, Entry>>>);

impl Store {
    /// The map, also after a method panicked while holding it: every write
    /// below is a single insert or remove, so the map is never half-changed.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn put(&self, key: String, value: String, ttl_ms: Option<u64>) {
        let expires_at_ms = ttl_ms.map(|ttl| now_ms().saturating_add(ttl));
        self.lock().insert(
            key,
            Entry {
                value,
                expires_at_ms,
            },
        );
    }

    fn get(&self, key: &str) -> Option<String> {
        let now = now_ms();
        self.lock()
            .get(key)
            .filter(|e| e.expires_at_ms.is_none_or(|at| at > now))
            .map(|e| e.value.clone())
    }

    /// Drops expired keys; returns how many.
    fn compact(&self) -> usize {
        let now = now_ms();
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, e| e.expires_at_ms.is_none_or(|at| at > now));
        before - map.len()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn bad_key(key: &str) -> Option<PluginError> {
    key.is_empty()
        .then(|| PluginError::bad_arguments("kv: a key must not be empty"))
}

/// Builds the plugin; exported below.
pub fn plugin(config: &Config) -> Result<Plugin, PluginError> {
    let compact_every = Duration::from_millis(config.get::<u64>("compact_ms")?.unwrap_or(1000));
    let compactor_panics = config.get::<u32>("compactor_panics")?.unwrap_or(0);
    let refuse_import = config.get::<bool>("refuse_import")?.unwrap_or(false);
    let store = Store::default();
    let runs = Arc::new(AtomicU32::new(0));

    let (put, get, del, scan, len, fill, missing, watch) = (
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
        store.clone(),
    );
    let (compactor, export, import) = (store.clone(), store.clone(), store);

    Ok(Plugin::new("kvstore", env!("CARGO_PKG_VERSION"))
        .doc("A key-value store whose keys survive upgrades")
        .method(
            Method::new("kv_put", move |key: String, value: String, ttl_ms: Option<u64>| {
                if let Some(e) = bad_key(&key) {
                    return Err(e);
                }
                put.put(key, value, ttl_ms);
                Ok(())
            })
            .params(["key", "value", "ttl_ms"])
            .doc("Stores a value under a key, for ttl_ms milliseconds or for ever")
            .example(json!(["a", "1"]), json!(null))
            .example_error(json!(["", "1"]), codes::BAD_ARGUMENTS),
        )
        .method(
            Method::new("kv_get", move |key: String| {
                get.get(&key)
                    .ok_or_else(|| PluginError::not_found(format!("kv: no key `{key}`")))
            })
            .params(["key"])
            .doc("The value stored under a key; 404 when there is none")
            .example_error(json!(["never-stored"]), codes::NOT_FOUND),
        )
        .method(
            Method::new("kv_delete", move |key: String| {
                Ok::<_, PluginError>(del.lock().remove(&key).is_some())
            })
            .params(["key"])
            .doc("Removes a key; true when it was there")
            .example(json!(["never-stored"]), json!(false)),
        )
        .method(
            Method::new("kv_scan", move |prefix: String, limit: Option<usize>| {
                let map = scan.lock();
                let keys: Vec<String> = map
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .take(limit.unwrap_or(100))
                    .map(|(k, _)| k.clone())
                    .collect();
                Ok::<_, PluginError>(keys)
            })
            .params(["prefix", "limit"])
            .doc("Keys that start with a prefix, in order (at most limit, default 100)")
            .example(json!(["never-stored/"]), json!([])),
        )
        .method(
            // No example: its answer depends on what other calls stored
            // (the scenarios cover it).
            Method::new("kv_len", move || Ok::<_, PluginError>(len.lock().len()))
                .doc("How many keys are stored (expired ones until compacted)"),
        )
        .method(
            Method::new("kv_fill", move |prefix: String, count: u64| {
                let mut map = fill.lock();
                for i in 0..count {
                    map.insert(
                        format!("{prefix}{i}"),
                        Entry {
                            value: i.to_string(),
                            expires_at_ms: None,
                        },
                    );
                }
                Ok::<_, PluginError>(count)
            })
            .params(["prefix", "count"])
            .doc("Stores keys prefix0..prefix{count-1}, each with its number as value")
            .example(json!(["fill/", 2]), json!(2)),
        )
        .method(
            Method::new("kv_missing", move |prefix: String, from: u64, to: u64| {
                let map = missing.lock();
                let absent: Vec<u64> = (from..to)
                    .filter(|i| !map.contains_key(&format!("{prefix}{i}")))
                    .take(100)
                    .collect();
                Ok::<_, PluginError>(absent)
            })
            .params(["prefix", "from", "to"])
            .doc("Which of prefix{from}..prefix{to-1} are not stored (the first 100)")
            .example(json!(["none/", 0, 2]), json!([0, 1])),
        )
        .method(
            Method::new("kv_watch", move |ctx: &Context, key: String| {
                let before = watch.get(&key);
                // Wakes at once when the call is cancelled (its deadline
                // passed, or the host is stopping or retiring us).
                while !ctx.wait_cancelled(Duration::from_millis(5)) {
                    let now = watch.get(&key);
                    if now != before {
                        return Ok(now);
                    }
                }
                ctx.log(LogLevel::Debug, &format!("kv_watch {key}: cancelled"));
                Err(PluginError::new(
                    codes::DEADLINE_EXCEEDED,
                    format!("kv_watch {key}: cancelled before the key changed"),
                ))
            })
            .params(["key"])
            .doc("Waits until a key changes and returns its new value; gives up when the call is cancelled"),
        )
        .method(
            Method::new("kv_build", || {
                Ok::<_, PluginError>(option_env!("KVSTORE_BUILD_TAG").unwrap_or("default"))
            })
            .doc("Which build this is (the KVSTORE_BUILD_TAG it was compiled with)")
            .example(json!([]), json!(option_env!("KVSTORE_BUILD_TAG").unwrap_or("default"))),
        )
        .scenario(
            Scenario::new("put, get, overwrite, delete")
                .step("kv_put", json!(["a", "1"]), json!(null))
                .step("kv_get", json!(["a"]), json!("1"))
                .step("kv_put", json!(["a", "2"]), json!(null))
                .step("kv_get", json!(["a"]), json!("2"))
                .step("kv_delete", json!(["a"]), json!(true))
                .step_error("kv_get", json!(["a"]), codes::NOT_FOUND),
        )
        .scenario(
            Scenario::new("scan by prefix")
                .step("kv_put", json!(["user/1", "ada"]), json!(null))
                .step("kv_put", json!(["user/2", "alan"]), json!(null))
                .step("kv_put", json!(["group/1", "x"]), json!(null))
                .step("kv_scan", json!(["user/"]), json!(["user/1", "user/2"]))
                .step("kv_len", json!([]), json!(3)),
        )
        .service(
            Service::new("compactor", move |ctx: &ServiceContext| {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                if run < compactor_panics {
                    panic!("compactor: told to panic on run {} of the first {compactor_panics}", run + 1);
                }
                while !ctx.wait_stop(compact_every) {
                    let dropped = compactor.compact();
                    if dropped > 0 {
                        ctx.log(LogLevel::Debug, &format!("compactor: dropped {dropped} expired keys"));
                    }
                }
                Ok(())
            })
            .doc("Drops expired keys every compact_ms"),
        )
        .state_json(
            move || Ok(export.lock().clone()),
            move |saved: BTreeMap<String, Entry>, from_version: &str| {
                if refuse_import {
                    return Err(PluginError::failed(format!(
                        "kvstore: configured to refuse state (exported by version {from_version})"
                    )));
                }
                *import.lock() = saved;
                Ok(())
            },
        ))
}

export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_a_hand_over_and_expire_on_time() {
        let old = plugin(&Config::default()).unwrap();
        old.call("kv_put", vec![json!("a"), json!("1")]).unwrap();
        old.call("kv_put", vec![json!("gone"), json!("x"), json!(0)])
            .unwrap();
        let new = plugin(&Config::default()).unwrap();
        old.hand_over_to(&new).unwrap();
        assert_eq!(new.call("kv_get", vec![json!("a")]).unwrap(), json!("1"));
        assert_eq!(
            new.call("kv_get", vec![json!("gone")]).unwrap_err().code,
            404
        );
    }

    #[test]
    fn a_refusing_instance_refuses_state() {
        let old = plugin(&Config::default()).unwrap();
        let new = plugin(&Config::from_value(json!({ "refuse_import": true }))).unwrap();
        assert_eq!(old.hand_over_to(&new).unwrap_err().code, 500);
    }

    #[test]
    fn watch_gives_up_when_its_call_is_cancelled() {
        let p = plugin(&Config::default()).unwrap();
        let call = LocalCall::new().timeout(Duration::from_millis(20));
        let err = p.call_in(&call, "kv_watch", json!(["k"])).unwrap_err();
        assert_eq!(err.code, 504);
    }
}
