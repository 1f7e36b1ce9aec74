//! Watching file descriptors 1 and 2 while plugin code runs, for the quiet
//! check ("a plugin logs through the host; it never prints").
//!
//! How: for the length of one *window* (one plugin call, one
//! initialisation, one service run), fds 1 and 2 are pointed at two
//! temporary files with `dup2` and restored afterwards. Files rather than
//! pipes, so a plugin that writes a lot can never block on a full pipe.
//! Before a window opens, the host's own Rust and C buffers are flushed; as
//! it closes, C stdio buffers are flushed again (a plugin printing with
//! `printf` into a file is fully buffered). What was captured is written to
//! the real stderr afterwards under a header naming the activity, so it is
//! not silently swallowed, and stdout stays clean for `--json`; a run
//! replays at most 20 lines in all (a plugin printing on every call would
//! otherwise bury the kit's table), and names how much more it caught.
//!
//! Why in process, and its limits: a child process per plugin would isolate
//! output perfectly, but the kit must also run inside a plugin author's
//! `cargo test`, where there is no binary to re-execute. File descriptors
//! belong to the whole process, so:
//! - windows are serialised by one process-wide lock (two kit runs in one
//!   process take turns);
//! - anything else in the process that writes to fd 1/2 during a window (the
//!   test harness announcing another test's result, say) is captured too.
//!   The kit therefore repeats the activity once in a fresh window when it
//!   sees output, and only blames the plugin when the output comes back;
//!   output seen once is reported as a note, not a failure;
//! - a plugin's own Rust `print!` without a newline stays in the plugin's
//!   `std` buffer and reaches the fd later; `println!` is caught at once.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom, Write},
    os::fd::{AsRawFd, RawFd},
    sync::Mutex,
};

use super::harness::excerpt;

/// Serialises capture windows across the whole process.
static WINDOW: Mutex<()> = Mutex::new(());

/// Bytes kept from one stream of one window for the report and the replay.
const KEEP_BYTES: u64 = 4 * 1024;

/// Most lines of captured output one run replays on stderr, over all its
/// windows: enough to see what a plugin prints, never pages of it before
/// the kit's table. Later output is only counted.
const REPLAY_LINES: usize = 20;

/// What one window caught (at most [`KEEP_BYTES`] of each stream).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Captured {
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    /// Bytes written in all, kept or not.
    pub(crate) total: u64,
}

impl Captured {
    fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }

    /// `stdout: "..."; stderr: "..."` for the streams that caught something.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, bytes) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            if !bytes.is_empty() {
                let text = String::from_utf8_lossy(bytes);
                parts.push(format!("{name} {:?}", excerpt(&text, 120)));
            }
        }
        parts.join(", ")
    }
}

/// Two temporary files that fds 1 and 2 point at during a window.
struct OutputCapture {
    stdout: File,
    stderr: File,
    /// Lines of the run's replay budget still free.
    replay_left: usize,
    /// Bytes caught but not replayed once the budget ran out.
    unshown: u64,
}

impl OutputCapture {
    fn new() -> io::Result<Self> {
        Ok(Self {
            stdout: anonymous_file(c"plughost-capture-stdout")?,
            stderr: anonymous_file(c"plughost-capture-stderr")?,
            replay_left: REPLAY_LINES,
            unshown: 0,
        })
    }

    /// Runs `f` with fds 1 and 2 redirected; returns its value and what was
    /// written. What was caught is replayed on stderr before the window
    /// lock is released, so a replay never lands in another run's window.
    fn window<T>(&mut self, activity: &str, f: impl FnOnce() -> T) -> io::Result<(T, Captured)> {
        let _turn = WINDOW.lock().unwrap_or_else(|p| p.into_inner());
        let redirect = Redirect::begin(&self.stdout, &self.stderr)?;
        let value = f();
        redirect.end()?;
        let (stdout, out_len) = drain(&mut self.stdout)?;
        let (stderr, err_len) = drain(&mut self.stderr)?;
        let captured = Captured {
            stdout,
            stderr,
            total: out_len + err_len,
        };
        if !captured.is_empty() {
            self.replay(activity, &captured);
        }
        Ok((value, captured))
    }

    /// Writes what a window caught to the real stderr, under a header,
    /// within the run's budget of [`REPLAY_LINES`]; beyond it, output is
    /// counted and named once in a closing line ([`Self::finish`]).
    fn replay(&mut self, activity: &str, captured: &Captured) {
        let kept = [&captured.stdout, &captured.stderr];
        if self.replay_left == 0 {
            self.unshown += captured.total;
            return;
        }
        let mut err = io::stderr().lock();
        let _ = writeln!(err, "[plughost conformance] output during {activity}:");
        self.replay_left -= 1;
        let mut shown = 0u64;
        for bytes in kept {
            let text = String::from_utf8_lossy(bytes);
            for line in text.lines() {
                if self.replay_left == 0 {
                    break;
                }
                let _ = writeln!(err, "{}", excerpt(line, 200));
                shown += line.len() as u64 + 1;
                self.replay_left -= 1;
            }
        }
        self.unshown += captured.total.saturating_sub(shown);
        let _ = err.flush();
    }

    /// Names what the budget left out, once, at the end of a run.
    fn finish(&mut self) {
        if self.unshown > 0 {
            let mut err = io::stderr().lock();
            let _ = writeln!(
                err,
                "[plughost conformance] ... {} more bytes of captured output not shown (the quiet check's findings name each activity)",
                self.unshown
            );
            self.unshown = 0;
        }
    }
}

impl Drop for OutputCapture {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A file with no name (`memfd_create`): nothing to clean up, nothing
/// another process can open, and no `tempfile` crate in plugin authors'
/// dependency graphs.
fn anonymous_file(name: &std::ffi::CStr) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string; the call only reads it.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    Ok(unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Reads (at most [`KEEP_BYTES`] of) a capture file and empties it;
/// returns the bytes kept and the file's whole length.
fn drain(file: &mut File) -> io::Result<(Vec<u8>, u64)> {
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut kept = Vec::new();
    Read::by_ref(file).take(KEEP_BYTES).read_to_end(&mut kept)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    Ok((kept, len))
}

/// fds 1 and 2 pointed elsewhere; restored by [`Redirect::end`] or on drop
/// (so a panic in the kit never leaves the process without its stdout).
struct Redirect {
    saved: Vec<(RawFd, RawFd)>,
}

impl Redirect {
    fn begin(stdout: &File, stderr: &File) -> io::Result<Self> {
        flush_all();
        let mut redirect = Self {
            saved: Vec::with_capacity(2),
        };
        for (target, file) in [(1, stdout), (2, stderr)] {
            // SAFETY: dup/dup2 on descriptors this process owns; every return value is checked.
            let saved = unsafe { libc::dup(target) };
            if saved < 0 {
                return Err(io::Error::last_os_error());
            }
            redirect.saved.push((target, saved));
            // SAFETY: as above; `file` outlives the window, and fd `target` is restored before it closes.
            if unsafe { libc::dup2(file.as_raw_fd(), target) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(redirect)
    }

    fn end(mut self) -> io::Result<()> {
        self.restore()
    }

    fn restore(&mut self) -> io::Result<()> {
        flush_all();
        let mut result = Ok(());
        for (target, saved) in self.saved.drain(..) {
            // SAFETY: `saved` is a descriptor we dup'ed in `begin` and close exactly once here.
            unsafe {
                if libc::dup2(saved, target) < 0 {
                    result = Err(io::Error::last_os_error());
                }
                libc::close(saved);
            }
        }
        result
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// Flushes the host's Rust stdout/stderr and every C stdio stream.
fn flush_all() {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    // SAFETY: fflush(NULL) flushes all open output streams; always allowed.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
}

/// Output seen during one activity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sighting {
    /// What the kit was doing ("fibo example 1", "init with the sample config").
    pub(crate) activity: String,
    /// What was caught the first time.
    pub(crate) first: Captured,
    /// True when a repeat of the activity printed again.
    pub(crate) confirmed: bool,
}

impl Sighting {
    /// One finding line.
    pub(crate) fn describe(&self) -> String {
        let again = if self.confirmed {
            "and again when repeated"
        } else {
            "once, not when repeated (not blamed on the plugin: another thread of this process may have printed)"
        };
        format!("{}: wrote {} {again}", self.activity, self.first.describe())
    }
}

/// Runs plugin code in capture windows and remembers what it printed.
pub(crate) struct Quiet {
    capture: Option<OutputCapture>,
    /// Why output is not being watched, when it is not.
    unavailable: Option<String>,
    windows: usize,
    sightings: Vec<Sighting>,
}

impl Quiet {
    /// A watcher; with `enabled` false (or when temporary files cannot be
    /// made) it runs code unwatched and the quiet check is skipped.
    pub(crate) fn new(enabled: bool) -> Self {
        if !enabled {
            return Self::unwatched("output capture was turned off".to_owned());
        }
        match OutputCapture::new() {
            Ok(capture) => Self {
                capture: Some(capture),
                unavailable: None,
                windows: 0,
                sightings: Vec::new(),
            },
            Err(e) => Self::unwatched(format!("cannot create capture files: {e}")),
        }
    }

    fn unwatched(reason: String) -> Self {
        Self {
            capture: None,
            unavailable: Some(reason),
            windows: 0,
            sightings: Vec::new(),
        }
    }

    /// Runs `f` in a capture window. When something was printed, runs it
    /// once more in a fresh window to tell the plugin's output from stray
    /// output of other threads; returns the first run's value.
    pub(crate) fn watch<T>(&mut self, activity: &str, mut f: impl FnMut() -> T) -> T {
        let Some(capture) = self.capture.as_mut() else {
            return f();
        };
        let (value, first) = match capture.window(activity, &mut f) {
            Ok(done) => done,
            Err(e) => {
                self.unavailable = Some(format!("redirecting stdout/stderr failed: {e}"));
                self.capture = None;
                return f();
            }
        };
        self.windows += 1;
        if !first.is_empty() {
            let confirmed = match capture.window(&format!("{activity} (repeated)"), &mut f) {
                Ok((_, again)) => !again.is_empty(),
                Err(_) => true,
            };
            self.windows += 1;
            self.sightings.push(Sighting {
                activity: activity.to_owned(),
                first,
                confirmed,
            });
        }
        value
    }

    /// Why output was not watched, if it was not.
    pub(crate) fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    /// How many windows ran.
    pub(crate) fn windows(&self) -> usize {
        self.windows
    }

    /// Everything seen.
    pub(crate) fn sightings(&self) -> &[Sighting] {
        &self.sightings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    // These tests write to the process's real fds 1 and 2 on purpose; the
    // window lock keeps them from mixing with each other. The test harness
    // itself writes to fd 1 when another test of this binary ends, which may
    // land in a window: a test whose expectation such output can spoil
    // tries again (a real fault fails every attempt).

    /// Runs `attempt` until it returns `Ok`, at most 5 times; the last
    /// error otherwise.
    fn within_attempts(mut attempt: impl FnMut() -> Result<(), String>) {
        let mut last = String::new();
        for _ in 0..5 {
            match attempt() {
                Ok(()) => return,
                Err(e) => last = e,
            }
        }
        panic!("5 attempts failed; the last: {last}");
    }

    #[test]
    fn a_write_to_fd_1_inside_a_window_is_caught_and_confirmed() {
        within_attempts(|| {
            let mut quiet = Quiet::new(true);
            let value = quiet.watch("writes", || {
                // SAFETY: writing a static buffer to fd 1.
                unsafe { libc::write(1, b"to fd 1\n".as_ptr().cast(), 8) };
                42
            });
            assert_eq!(value, 42);
            let seen = quiet.sightings();
            assert_eq!(seen.len(), 1, "{seen:?}");
            assert!(seen[0].confirmed);
            if seen[0].first.stdout != b"to fd 1\n" {
                return Err(format!("caught {:?}", seen[0].describe()));
            }
            assert!(
                seen[0]
                    .describe()
                    .contains("stdout \"to fd 1\\n\" and again"),
                "{}",
                seen[0].describe()
            );
            Ok(())
        });
    }

    #[test]
    fn output_that_does_not_come_back_is_not_confirmed() {
        within_attempts(|| {
            let mut quiet = Quiet::new(true);
            let mut first = true;
            quiet.watch("once", || {
                if std::mem::take(&mut first) {
                    // SAFETY: writing a static buffer to fd 2.
                    unsafe { libc::write(2, b"once\n".as_ptr().cast(), 5) };
                }
            });
            let seen = quiet.sightings();
            assert_eq!(seen[0].first.stderr, b"once\n");
            if seen[0].confirmed {
                return Err(format!("confirmed: {}", seen[0].describe()));
            }
            Ok(())
        });
    }

    #[test]
    fn silent_code_leaves_no_sighting_and_fds_are_restored() {
        let mut quiet = Quiet::new(true);
        within_attempts(|| {
            quiet = Quiet::new(true);
            quiet.watch("silent", || ());
            if !quiet.sightings().is_empty() {
                return Err(format!("a sighting: {}", quiet.sightings()[0].describe()));
            }
            Ok(())
        });
        assert_eq!(quiet.windows(), 1);
        // fd 1 is back: it is not this capture's file any more. Looked at
        // under the window lock, so no other test's window has fd 1 then,
        // and by file identity: every capture file has the same name.
        let capture = quiet.capture.as_ref().unwrap();
        let _turn = WINDOW.lock().unwrap_or_else(|p| p.into_inner());
        let identity = |m: std::fs::Metadata| (m.dev(), m.ino());
        let fd1 = identity(std::fs::metadata("/proc/self/fd/1").unwrap());
        let file = identity(capture.stdout.metadata().unwrap());
        assert_ne!(fd1, file);
    }
}
