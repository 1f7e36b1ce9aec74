//! Plugin files as they really arrive: cut short, copied slowly over the
//! running one, writable by other users. Each scenario runs the real
//! `plughost run` binary against the real broker (unique exchanges per
//! test) and checks what an operator relies on: the host stays alive, the
//! bad file is refused with the reason in the log, the running set keeps
//! serving, and the next good copy is applied. A last test checks that the
//! shadow cache is pruned, across processes.
//!
//! Timing: waits are on events (a log line, a call's answer) with generous
//! limits (30 s) because several builds and tests share two cores; the one
//! deliberate pause is the slow copy's, which must outlast the watcher's
//! 300 ms debounce to reproduce the fault.

#![allow(clippy::unwrap_used)]

use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use plughost::{
    admin::{self, AdminRequest},
    manifest::Manifest,
    watch::DEBOUNCE,
};
use plughost_client::{Client, ClientOptions, Exchanges, RpcError};
use plughost_loader::{file_sha256, load, LoadError, PluginSpec};
use plughost_test_support::{
    plughost_bin, process, variant_lib, PlughostRun, TestExchanges, Variant, AMQP_URL,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// A build of the echo plugin whose `version` ends in `+<tag>` (the same
/// builds as the hot-reload tests, so they are built once).
fn echo_build(tag: &str) -> PathBuf {
    variant_lib(
        "echo",
        &Variant {
            env: vec![("ECHO_BUILD_TAG".into(), tag.into())],
            ..Default::default()
        },
    )
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Where the last loadable segment ends: the dynamic loader needs nothing
/// past it, so a copy cut later is what it would accept (ELF64 LE only).
fn loadable_end(elf: &[u8]) -> u64 {
    let u16_at = |at: usize| u64::from(u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()));
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    (0..phnum)
        .map(|i| (phoff + i * phentsize) as usize)
        .filter(|&at| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 1)
        .map(|at| u64_at(at + 8) + u64_at(at + 32))
        .max()
        .unwrap()
}

/// A host serving the echo plugin from a file in its own private folder,
/// with its own shadow cache, run as the real binary.
struct Deployment {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    ex: TestExchanges,
    manifest: PathBuf,
    host: PlughostRun,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
}

impl Deployment {
    /// Writes a manifest loading `plugin` (a path in `dir`, see `with`) and
    /// starts `plughost run` on it.
    fn start(label: &str, host_settings: &str, plugin: impl FnOnce(&Path) -> PathBuf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let ex = TestExchanges::new(label);
        let plugin = plugin(dir.path());
        let manifest = dir.path().join("plughost.toml");
        fs::write(&manifest, manifest_text(&ex, host_settings, &plugin)).unwrap();
        let host = PlughostRun::start(
            plughost_bin(),
            &manifest,
            &[("PLUGHOST_LIB_CACHE", cache.path())],
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            dir,
            cache,
            ex,
            manifest,
            host,
            rt,
            client: None,
        }
    }

    /// Starts a host serving build `tag` of echo from `<dir>/libplugin_echo.so`.
    fn serving(label: &str, tag: &str) -> (Self, PathBuf) {
        let mut file = PathBuf::new();
        let mut d = Self::start(label, "", |dir| {
            file = dir.join("libplugin_echo.so");
            fs::copy(echo_build(tag), &file).unwrap();
            chmod(&file, 0o755);
            file.clone()
        });
        d.wait_version(&format!("0.1.0+{tag}"));
        (d, file)
    }

    fn rewrite_manifest(&self, host_settings: &str, plugin: &Path) {
        fs::write(
            &self.manifest,
            manifest_text(&self.ex, host_settings, plugin),
        )
        .unwrap();
    }

    fn call_version(&mut self) -> Result<Value, RpcError> {
        if self.client.is_none() {
            let mut options = ClientOptions::new(AMQP_URL);
            options.exchanges = Exchanges {
                rpc: self.ex.rpc.clone(),
                ns: self.ex.ns.clone(),
            };
            options.timeout = Duration::from_secs(5);
            self.client = Some(self.rt.block_on(Client::connect(options)).unwrap());
        }
        let client = self.client.as_ref().unwrap();
        self.rt.block_on(client.call_json("version", &[]))
    }

    /// Calls `version` until it answers `expected` (the host may still be
    /// starting or applying a reload); panics if the host dies meanwhile.
    fn wait_version(&mut self, expected: &str) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.host.exited() {
                panic!(
                    "the host died ({status}) while we waited for version {expected}; its log:\n{}",
                    self.host.log_text()
                );
            }
            let answer = self.call_version();
            if matches!(&answer, Ok(v) if v == expected) {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "version never became {expected}, last answer {answer:?}; the host's log:\n{}",
                self.host.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The host is alive and still serves `expected`.
    fn still_serving(&mut self, expected: &str) {
        assert!(
            self.host.exited().is_none(),
            "the host died: {}",
            self.host.log_text()
        );
        assert_eq!(self.call_version().unwrap(), json!(expected));
    }

    fn admin(&self, request: AdminRequest) -> admin::AdminReply {
        let m = Manifest::load(&self.manifest).unwrap();
        self.rt
            .block_on(admin::request(&admin::socket_path(&m), request))
            .unwrap()
    }
}

fn manifest_text(ex: &TestExchanges, host_settings: &str, plugin: &Path) -> String {
    format!(
        "[host]\nname = \"plugin-files\"\n{host_settings}\n{}\n[roles]\nmanager = false\nservices = false\n\n[[plugins]]\npath = {:?}\n",
        ex.rabbitmq_toml(),
        plugin.display().to_string()
    )
}

#[test]
fn truncated_copies_are_refused_with_the_reason_and_a_complete_one_is_applied() {
    let (mut d, file) = Deployment::serving("files-cut", "one");
    let two = fs::read(echo_build("two")).unwrap();
    let full = two.len() as u64;
    let after_load = loadable_end(&two) + 4096;
    assert!(
        after_load < full,
        "debug builds carry sections after the loadable segments"
    );
    // Empty, inside the ELF header, inside a loadable segment (the 500,000
    // bytes of the original report), past every loadable segment (what the
    // dynamic loader accepts), one byte short.
    for cut in [0, 30, 500_000, after_load, full - 1] {
        let mark = d.host.log_mark();
        fs::write(&file, &two[..cut as usize]).unwrap(); // in place, as `cp` does
        let expected = format!("but the file has {cut} bytes");
        let line = d
            .host
            .wait_for_log(mark, &["reload refused", "truncated:", &expected], WAIT);
        assert!(
            line.contains(&format!("plugin file {}: truncated: ", file.display())),
            "{line}"
        );
        d.still_serving("0.1.0+one");
    }
    let names: Vec<_> = fs::read_dir(d.cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(
        names.len(),
        1,
        "no refused copy enters the cache: {names:?}"
    );

    fs::write(&file, &two).unwrap();
    d.wait_version("0.1.0+two");
}

#[test]
fn a_slow_copy_over_the_plugin_is_refused_midway_and_applied_when_complete() {
    let (mut d, file) = Deployment::serving("files-slow", "one");
    let two = fs::read(echo_build("two")).unwrap();
    let mark = d.host.log_mark();
    let mut out = fs::File::create(&file).unwrap(); // truncates in place, like `cp`
    out.write_all(&two[..500_000]).unwrap();
    out.flush().unwrap();
    // The pause that used to kill the host: longer than the debounce, so
    // the watcher reloads while the copy is half done.
    std::thread::sleep(DEBOUNCE * 4);
    let line = d
        .host
        .wait_for_log(mark, &["reload refused", "truncated:"], WAIT);
    assert!(line.contains(&file.display().to_string()), "{line}");
    d.still_serving("0.1.0+one");
    out.write_all(&two[500_000..]).unwrap();
    drop(out);
    d.wait_version("0.1.0+two");
}

#[test]
fn a_reload_during_a_copy_says_the_file_is_still_being_written() {
    let (mut d, file) = Deployment::serving("files-growing", "one");
    let two = fs::read(echo_build("two")).unwrap();
    // A slow writer: 64 KiB every 20 ms (about 4.5 s for a debug build),
    // never pausing long enough for the watcher to fire.
    let writer = {
        let (file, two) = (file.clone(), two.clone());
        std::thread::spawn(move || {
            let mut out = fs::File::create(&file).unwrap();
            for chunk in two.chunks(64 * 1024) {
                out.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    // An operator's `plughost reload` (or SIGHUP) in the middle of it.
    let reply = d.admin(AdminRequest::Reload);
    assert!(!reply.ok, "a reload during the copy applied: {reply:?}");
    let error = reply.error.unwrap();
    assert!(
        error.contains(&format!(
            "plugin file {}: still being written: size changed from ",
            file.display()
        )),
        "{error}"
    );
    d.still_serving("0.1.0+one");
    writer.join().unwrap();
    d.wait_version("0.1.0+two");
}

#[test]
fn a_plugin_file_others_can_write_is_refused_unless_the_manifest_allows_it() {
    let (mut d, file) = Deployment::serving("files-mode", "one");
    // Another user's edit of a world-writable plugin file.
    chmod(&file, 0o666);
    let mark = d.host.log_mark();
    fs::write(&file, fs::read(echo_build("two")).unwrap()).unwrap(); // in place: the mode stays
    let line = d.host.wait_for_log(mark, &["reload refused"], WAIT);
    let expected = format!(
        "plugin file {0}: refused: file {0} is writable by its group and others (mode 0666)",
        file.display()
    );
    assert!(line.contains(&expected), "{line}");
    assert!(
        line.contains(&format!("run `chmod go-w {}`", file.display())),
        "{line}"
    );
    assert!(
        line.contains("allow_insecure_plugin_files = true"),
        "{line}"
    );
    d.still_serving("0.1.0+one");

    // The operator accepts the risk: the file loads, with a warning...
    let mark = d.host.log_mark();
    d.rewrite_manifest("allow_insecure_plugin_files = true", &file);
    d.wait_version("0.1.0+two");
    let warning = d.host.wait_for_log(
        mark,
        &[
            "WARN",
            "writable by its group and others",
            "loading it anyway",
        ],
        WAIT,
    );
    assert!(warning.contains(&file.display().to_string()), "{warning}");
    // ...at every load.
    let mark = d.host.log_mark();
    assert!(d.admin(AdminRequest::Reload).ok);
    d.host
        .wait_for_log(mark, &["WARN", "loading it anyway"], WAIT);
}

#[test]
fn a_group_writable_plugin_folder_is_refused_at_start_unless_the_manifest_allows_it() {
    let place = |dir: &Path| {
        let shared = dir.join("shared");
        fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o775);
        let file = shared.join("libplugin_echo.so");
        fs::copy(echo_build("one"), &file).unwrap();
        file
    };
    let mut d = Deployment::start("files-folder", "", place);
    let status = d.host.wait_exit(WAIT);
    assert_eq!(status.code(), Some(1), "{}", d.host.log_text());
    let log = d.host.log_text();
    let shared = d.dir.path().join("shared");
    assert!(
        log.contains(&format!(
            "refused: folder {} is writable by its group (mode 0775)",
            shared.display()
        )) && log.contains(&format!("run `chmod go-w {}`", shared.display())),
        "{log}"
    );

    let mut d = Deployment::start(
        "files-folder-ok",
        "allow_insecure_plugin_files = true",
        place,
    );
    d.wait_version("0.1.0+one");
    let warning = d.host.wait_for_log(0, &["WARN", "loading it anyway"], WAIT);
    assert!(
        warning.contains(&format!("folder {}", d.dir.path().join("shared").display())),
        "{warning}"
    );
}

#[test]
fn the_shadow_cache_keeps_loaded_copies_and_the_newest_builds() {
    let (mut d, _) = Deployment::serving("files-cache", "one");
    let cache = d.cache.path().to_path_buf();
    let copy_of = |file: &Path| {
        let sha = file_sha256(file).unwrap();
        format!("libplugin_echo-{}.so", &sha[..16])
    };
    let held = copy_of(&d.dir.path().join("libplugin_echo.so"));
    // Six more builds, each loaded once by a one-shot `plughost invoke`
    // sharing the cache: distinct content (trailing bytes), same file name.
    let two = fs::read(echo_build("two")).unwrap();
    let builds: Vec<PathBuf> = (1..=6)
        .map(|i| {
            let folder = d.dir.path().join(format!("build{i}"));
            fs::create_dir(&folder).unwrap();
            let file = folder.join("libplugin_echo.so");
            fs::write(&file, [two.as_slice(), &vec![0; i]].concat()).unwrap();
            file
        })
        .collect();
    let invoke = |file: &Path| {
        let out = std::process::Command::new(plughost_bin())
            .args(["invoke", "--plugin"])
            .arg(file)
            .arg("version")
            .env("PLUGHOST_LIB_CACHE", &cache)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", process::stderr(&out));
        assert_eq!(process::stdout(&out).trim(), "\"0.1.0+two\"");
        process::stderr(&out)
    };
    let in_cache = || {
        let mut names: Vec<String> = fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let mut log = String::new();
    for build in &builds[..5] {
        log = invoke(build);
    }
    // Kept: the copy the running host has loaded (though it is the oldest),
    // and the three newest builds.
    let newest = |range: std::ops::Range<usize>| {
        builds[range].iter().map(|b| copy_of(b)).collect::<Vec<_>>()
    };
    assert_eq!(
        in_cache(),
        sorted([vec![held.clone()], newest(2..5)].concat())
    );
    assert!(
        log.contains("shadow cache pruned") && log.contains(&copy_of(&builds[1])),
        "the last prune says what it removed: {log}"
    );
    assert!(
        log.contains(&held),
        "and what it kept because it is loaded: {log}"
    );

    // Once the host is gone, its copy is an old build like any other.
    d.host.kill();
    invoke(&builds[5]);
    assert_eq!(in_cache(), sorted(newest(3..6)));
}

#[test]
fn a_shadow_cache_folder_others_can_write_is_refused() {
    // The cache is where libraries are mapped from: a folder others can
    // write to would let them swap a copy between the checks and dlopen.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("libplugin_echo.so");
    fs::copy(echo_build("one"), &file).unwrap();
    let cache = dir.path().join("cache");
    fs::create_dir(&cache).unwrap();
    chmod(&cache, 0o777);
    let out = std::process::Command::new(plughost_bin())
        .args(["invoke", "--plugin"])
        .arg(&file)
        .arg("version")
        .env("PLUGHOST_LIB_CACHE", &cache)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = process::stderr(&out);
    assert!(
        err.contains(&format!(
            "plugin file {}: refused: the shadow cache's folder {} is writable by its group and others (mode 0777); run `chmod go-w {}`",
            file.display(),
            cache.display(),
            cache.display()
        )),
        "{err}"
    );
    assert_eq!(
        fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing was copied"
    );
}

#[test]
fn the_loader_refuses_cut_copies_of_a_real_plugin_without_mapping_them() {
    let dir = tempfile::tempdir().unwrap();
    let two = fs::read(echo_build("two")).unwrap();
    let full = two.len() as u64;
    for cut in [16, 500_000, loadable_end(&two) + 1, full - 1] {
        let file = dir.path().join(format!("libcut{cut}.so"));
        fs::write(&file, &two[..cut as usize]).unwrap();
        let err = load(&PluginSpec::file(&file)).unwrap_err();
        match &err {
            LoadError::Truncated { path, len, end, .. } => {
                assert_eq!((path, *len), (&file, cut), "{err}");
                assert!(*end > cut && *end <= full, "{err}");
            }
            other => panic!("cut at {cut}: {other}"),
        }
    }
}
