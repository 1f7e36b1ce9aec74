//! The status page at `/` of a real `plughost run`, as a browser shows it:
//! headless Chromium runs the page's script and the test reads the DOM it
//! built. The page shows the host's plugins (versions, hashes, states), and
//! a reload appears on it with its result.
//!
//! Chromium is Debian's `chromium` package. When it is missing the test
//! installs it with apt-get (as root), or skips saying why on stderr.

#![allow(clippy::unwrap_used)]

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use plughost_test_support::{
    free_port, plughost_bin, plugin_lib, process::output_within, HostProcess, TestExchanges,
};

/// Chromium, installed when missing and possible; `Err`: why not.
fn chromium() -> Result<PathBuf, String> {
    let find = || {
        ["chromium", "chromium-browser"]
            .into_iter()
            .find_map(|name| {
                let out = Command::new("which").arg(name).output().ok()?;
                out.status
                    .success()
                    .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
            })
    };
    if let Some(path) = find() {
        return Ok(path);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("chromium is not installed and the test is not root to install it (apt-get install chromium)".to_owned());
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("cannot run apt-get to install chromium: {e}"))?;
    if !installed.status.success() {
        return Err(format!(
            "apt-get install chromium failed: {}",
            String::from_utf8_lossy(&installed.stderr)
        ));
    }
    find().ok_or_else(|| "apt-get installed chromium, but it is not on PATH".to_owned())
}

/// The DOM of `url` after its script ran (a few seconds of virtual time).
fn dom(chromium: &PathBuf, url: &str) -> String {
    let (out, _) = output_within(
        chromium,
        &[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        Duration::from_secs(120),
    );
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads the page until `done` holds (panics with the last DOM after `timeout`).
fn wait_dom(chromium: &PathBuf, url: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let page = dom(chromium, url);
        if done(&page) {
            return page;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the status page never showed {what}:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn manifest(ex: &TestExchanges, port: u16, plugins: &[&str]) -> String {
    let mut text = format!(
        "[host]\nname = \"status-page-{}\"\n\n{}\n[roles]\nmanager = false\nservices = false\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[local]\nsocket = \"local.sock\"\n\n",
        &uuid::Uuid::new_v4().simple().to_string()[..8],
        ex.rabbitmq_toml()
    );
    for p in plugins {
        text.push_str(&format!(
            "[[plugins]]\npath = {:?}\n\n",
            plugin_lib(p).display().to_string()
        ));
    }
    text
}

#[test]
fn the_page_shows_the_plugins_and_a_reload() {
    let chromium = match chromium() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("SKIPPED the_page_shows_the_plugins_and_a_reload: {why}");
            return;
        }
    };
    let ex = TestExchanges::new("status-page");
    let port = free_port();
    let host = HostProcess::start(plughost_bin(), &manifest(&ex, port, &["math"]));
    let status = host.wait_serving();
    let sha = status["plugins"][0]["sha256"].as_str().unwrap()[..12].to_owned();
    let url = format!("http://127.0.0.1:{port}/");

    let page = wait_dom(&chromium, &url, "the math plugin", |p| {
        p.contains("<td>math</td>")
    });
    for shown in [
        "<td>0.1.0</td>",
        "<td>serving</td>",
        sha.as_str(),
        "broker serving",
        "no reloads since start",
    ] {
        assert!(page.contains(shown), "{shown:?} on the page:\n{page}");
    }

    // Add a plugin: the reload shows with its result and what it changed.
    host.rewrite_manifest(&manifest(&ex, port, &["math", "echo"]));
    let page = wait_dom(&chromium, &url, "the reload", |p| {
        p.contains("<td>added echo</td>")
    });
    assert!(page.contains("<td>applied</td>"), "{page}");
    assert!(
        page.contains("<td>echo</td>"),
        "the new plugin is listed:\n{page}"
    );
}
