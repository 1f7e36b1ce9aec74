//! `plughost new`: a plugin crate that builds and passes the conformance kit
//! as generated, so an author starts from something that works.
//!
//! The files come from templates in `templates/` (compiled in with
//! `include_str!`), filled in with the crate's name and with how it depends
//! on plughost's crates: by path when there is a plughost checkout to point
//! at (the crates are not published from a checkout), else by version.
//! When it depends by path, the checkout's `Cargo.lock` is copied in, so the
//! new crate builds with the dependency versions the host was tested with
//! (and offline).

use std::{
    fs,
    path::{Path, PathBuf},
};

/// What the generated crate depends on plughost's crates through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiSource {
    /// A plughost checkout: `<checkout>/plugin-api` and `<checkout>/tests/conformance`.
    Checkout(PathBuf),
    /// Published crates of this version.
    Version(String),
}

impl ApiSource {
    /// Where the crates come from, for people.
    pub fn describe(&self) -> String {
        match self {
            ApiSource::Checkout(dir) => format!(
                "path dependencies on the plughost checkout at {}",
                dir.display()
            ),
            ApiSource::Version(v) => {
                format!("plughost-plugin-api and plughost-conformance {v} from the registry")
            }
        }
    }
}

/// Why a crate could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a crate and plugin name.
    #[error("`{name}` cannot name a plugin crate: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The target folder exists and is not empty.
    #[error("{path} already exists and is not empty; pick another name or --path")]
    Exists {
        /// The folder.
        path: PathBuf,
    },
    /// Writing a file failed.
    #[error("writing {path}: {reason}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// A generated crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaffold {
    /// The crate's folder.
    pub root: PathBuf,
    /// The files written, relative to `root`.
    pub files: Vec<PathBuf>,
    /// How it depends on plughost.
    pub api: ApiSource,
    /// The `[[plugins]]` manifest entry for its release build.
    pub snippet: String,
    /// The library file `cargo build --release` makes.
    pub release_library: PathBuf,
}

const CARGO_TOML: &str = include_str!("templates/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("templates/lib.rs.tmpl");
const CONFORMANCE_RS: &str = include_str!("templates/conformance.rs.tmpl");
const SNIPPET: &str = include_str!("templates/snippet.toml.tmpl");
const GITIGNORE: &str = include_str!("templates/gitignore.tmpl");

/// The file the manifest snippet is written to, in the crate's folder.
pub const SNIPPET_FILE: &str = "plughost.toml.snippet";

/// Checks that `name` can be a crate name and a plugin name.
pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let bad = |reason| {
        Err(ScaffoldError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    match name.chars().next() {
        None => return bad("it is empty"),
        Some(c) if !c.is_ascii_alphabetic() => return bad("it must start with a letter"),
        Some(_) => {}
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return bad("use only letters, digits, '-' and '_'");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    if matches!(
        name,
        "test" | "std" | "core" | "alloc" | "proc_macro" | "self" | "crate" | "super"
    ) {
        return bad("it is reserved by Rust or Cargo");
    }
    Ok(())
}

/// True when `dir` is a plughost checkout (it has the plugin-api crate and
/// the conformance kit crate).
pub fn is_checkout(dir: &Path) -> bool {
    let named = |file: PathBuf, name: &str| {
        fs::read_to_string(file).is_ok_and(|text| text.contains(&format!("name = \"{name}\"")))
    };
    named(dir.join("plugin-api/Cargo.toml"), "plughost-plugin-api")
        && named(
            dir.join("tests/conformance/Cargo.toml"),
            "plughost-conformance",
        )
}

/// The checkout `start` lies in, looking at `start` and its ancestors.
pub fn find_checkout(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| is_checkout(dir))
        .map(Path::to_path_buf)
}

/// The checkout this binary was built from, if it is still there.
pub fn build_checkout() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    is_checkout(dir).then(|| dir.to_path_buf())
}

/// How a crate created in `dir` should depend on plughost: the checkout
/// `dir` (or the current folder) lies in, else the checkout this binary was
/// built from, else the published version.
pub fn detect_api_source(dir: &Path) -> ApiSource {
    let cwd = std::env::current_dir().ok();
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    find_checkout(&dir)
        .or_else(|| cwd.as_deref().and_then(find_checkout))
        .or_else(build_checkout)
        .map(ApiSource::Checkout)
        .unwrap_or_else(|| ApiSource::Version(env!("CARGO_PKG_VERSION").to_owned()))
}

/// Creates the plugin crate `name` in `parent/name`.
pub fn create(name: &str, parent: &Path, api: ApiSource) -> Result<Scaffold, ScaffoldError> {
    validate_name(name)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| ScaffoldError::Io {
            path,
            reason: e.to_string(),
        }
    };
    let parent = std::path::absolute(parent).map_err(io(parent))?;
    let root = parent.join(name);
    if fs::read_dir(&root).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(ScaffoldError::Exists { path: root });
    }

    let lib = name.replace('-', "_");
    let release_library = root.join("target/release").join(format!("lib{lib}.so"));
    let (api_dependency, kit_dependency) = match &api {
        ApiSource::Checkout(dir) => (
            format!(
                "plughost-plugin-api = {{ path = {} }}",
                toml_string(&dir.join("plugin-api"))
            ),
            format!(
                "plughost-conformance = {{ path = {} }}",
                toml_string(&dir.join("tests/conformance"))
            ),
        ),
        ApiSource::Version(v) => (
            format!("plughost-plugin-api = \"{v}\""),
            format!("plughost-conformance = \"{v}\""),
        ),
    };
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{lib}}", &lib)
            .replace("{{api_dependency}}", &api_dependency)
            .replace("{{kit_dependency}}", &kit_dependency)
            .replace(
                "{{library}}",
                &release_library.display().to_string().replace('\\', "\\\\"),
            )
    };
    let snippet = fill(SNIPPET);
    let files: Vec<(PathBuf, String)> = vec![
        ("Cargo.toml".into(), fill(CARGO_TOML)),
        ("src/lib.rs".into(), fill(LIB_RS)),
        ("tests/conformance.rs".into(), fill(CONFORMANCE_RS)),
        (SNIPPET_FILE.into(), snippet.clone()),
        (".gitignore".into(), GITIGNORE.to_owned()),
    ];
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = root.join(&relative);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io(dir))?;
        }
        fs::write(&path, text).map_err(io(&path))?;
        written.push(relative);
    }
    if let ApiSource::Checkout(dir) = &api {
        let lock = dir.join("Cargo.lock");
        if lock.is_file() {
            fs::copy(&lock, root.join("Cargo.lock")).map_err(io(&lock))?;
            written.push("Cargo.lock".into());
        }
    }
    tracing::debug!(root = %root.display(), api = %api.describe(), "scaffolded plugin crate");
    Ok(Scaffold {
        root,
        files: written,
        api,
        snippet,
        release_library,
    })
}

/// A path as a TOML basic string.
fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_crate_and_plugin_names() {
        assert!(validate_name("hello").is_ok());
        assert!(validate_name("hello-world_2").is_ok());
        for bad in [
            "",
            "2fast",
            "with space",
            "dots.no",
            "test",
            &"x".repeat(65),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        let err = validate_name("9lives").unwrap_err().to_string();
        assert_eq!(
            err,
            "`9lives` cannot name a plugin crate: it must start with a letter"
        );
    }

    #[test]
    fn this_repository_is_a_checkout() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        assert!(is_checkout(root));
        assert_eq!(find_checkout(&root.join("host/src")).as_deref(), Some(root));
        assert!(!is_checkout(&root.join("host")));
        assert_eq!(build_checkout().as_deref(), Some(root));
    }

    #[test]
    fn generates_a_crate_by_version_with_its_files_and_snippet() {
        let dir = tempfile::tempdir().unwrap();
        let s = create("my-plugin", dir.path(), ApiSource::Version("0.1.0".into())).unwrap();
        assert_eq!(
            s.root,
            std::path::absolute(dir.path()).unwrap().join("my-plugin")
        );
        let cargo = fs::read_to_string(s.root.join("Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-plugin\""), "{cargo}");
        assert!(cargo.contains("plughost-plugin-api = \"0.1.0\""), "{cargo}");
        assert!(
            cargo.contains("crate-type = [\"cdylib\", \"rlib\"]"),
            "{cargo}"
        );
        assert!(cargo.contains("\n[workspace]\n"), "{cargo}");
        // Built without incremental state or debug info (a quicker first build).
        assert!(
            cargo.contains("[profile.dev]\nincremental = false\ndebug = false\n"),
            "{cargo}"
        );
        let lib = fs::read_to_string(s.root.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("Plugin::new(\"my-plugin\"")
                && lib.contains(".route(\"plughost.my-plugin.greet\")"),
            "{lib}"
        );
        assert!(!lib.contains("{{"), "{lib}");
        assert!(
            s.snippet.contains("target/release/libmy_plugin.so"),
            "{}",
            s.snippet
        );
        assert_eq!(
            fs::read_to_string(s.root.join(SNIPPET_FILE)).unwrap(),
            s.snippet
        );
        assert!(!s.root.join("Cargo.lock").exists());
        // The snippet is a valid manifest once uncommented lines are taken as they are.
        let manifest =
            plughost::manifest::Manifest::parse(&s.snippet, dir.path(), "snippet").unwrap();
        assert_eq!(manifest.plugins[0].path, s.release_library);

        let again =
            create("my-plugin", dir.path(), ApiSource::Version("0.1.0".into())).unwrap_err();
        assert!(matches!(again, ScaffoldError::Exists { .. }), "{again}");
    }

    #[test]
    fn depends_on_a_checkout_by_path_and_copies_its_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let checkout = build_checkout().unwrap();
        let s = create("hello", dir.path(), ApiSource::Checkout(checkout.clone())).unwrap();
        let cargo = fs::read_to_string(s.root.join("Cargo.toml")).unwrap();
        let api = format!(
            "plughost-plugin-api = {{ path = \"{}\" }}",
            checkout.join("plugin-api").display()
        );
        assert!(cargo.contains(&api), "{cargo}");
        assert!(cargo.contains("tests/conformance\" }"), "{cargo}");
        assert!(s.files.contains(&PathBuf::from("Cargo.lock")));
    }
}
