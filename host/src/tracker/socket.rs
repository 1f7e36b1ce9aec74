//! The tracker's bridge to libzmq (through the `zmq` crate, linked against
//! the system library): contexts, the options every socket gets, the waker
//! a tokio task uses to rouse a role's thread, and socket-monitor events.
//!
//! Why threads: libzmq sockets are not thread-safe, so each role (the
//! manager, each service agent, each management client) runs on one OS
//! thread that owns its sockets and blocks in `zmq::poll`; tokio talks to it
//! through channels and wakes it through a [`Waker`] (one end of a Unix
//! socket pair, polled beside the zmq sockets). No socket ever crosses a
//! thread. `docs/architecture.md` records the measurement behind the choice.
//!
//! Why the limits here: libzmq checks `ZMQ_MAXMSGSIZE` against a frame's
//! announced length *before* it allocates, so a peer that announces a 1 TiB
//! frame is disconnected instead of aborting the process (the defect that
//! moved the tracker off the pure-Rust `zeromq` crate). High-water marks and
//! non-blocking or time-limited sends keep a slow or vanished peer from
//! stalling a role.
//!
//! Contexts are made through `zmq-sys` (not `zmq::Context::new`) because the
//! safe API cannot raise `ZMQ_MAX_SOCKETS` (1023 by default), and a host or
//! a test may run a thousand agents with two sockets and two monitors each.

use std::{
    io::{Read, Write},
    os::{fd::AsRawFd, unix::net::UnixStream},
    sync::{Arc, OnceLock},
    time::Duration,
};

use tracing::{debug, info};

use super::TrackerError;

/// Size and queue limits every tracker socket gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest message a peer may send, in bytes (`ZMQ_MAXMSGSIZE`,
    /// checked before allocation; a peer that announces more is disconnected).
    pub max_message_size: u64,
    /// Messages queued per peer in each direction (`ZMQ_SNDHWM`/`ZMQ_RCVHWM`).
    pub hwm: u32,
    /// How long a service's or a client's send may wait (a manager never waits).
    pub send_timeout: Duration,
}

/// The default largest message: 1 MiB, far above any tracker message (a
/// listing of 10,000 services is about 1.4 MB, so a manager that large
/// needs a larger limit for the v1 listing; the JSON listing has its own).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 1 << 20;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            hwm: 1000,
            send_timeout: Duration::from_secs(1),
        }
    }
}

/// A libzmq context this module made (see the module comment for why not
/// `zmq::Context`). Terminated when the last holder drops it, which waits
/// for its sockets to close: every socket is made with linger 0.
pub struct Context {
    raw: *mut std::ffi::c_void,
}

// SAFETY: a libzmq context is thread-safe (zmq_ctx_new(3): "a context is
// thread safe and may be shared among as many application threads as
// necessary"); only sockets are not, and they never leave their thread.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

impl Context {
    /// A context with `io_threads` I/O threads and room for `max_sockets` sockets.
    pub fn new(io_threads: i32, max_sockets: i32) -> Result<Arc<Self>, TrackerError> {
        // SAFETY: zmq_ctx_new has no preconditions; a null result is handled.
        let raw = unsafe { zmq_sys::zmq_ctx_new() };
        if raw.is_null() {
            return Err(TrackerError::Socket {
                what: "libzmq context".into(),
                reason: last_error().to_string(),
            });
        }
        // SAFETY: raw is a live context; ZMQ_SOCKET_LIMIT is a valid option.
        let limit = unsafe { zmq_sys::zmq_ctx_get(raw, zmq_sys::ZMQ_SOCKET_LIMIT as i32) };
        let wanted = if limit > 0 {
            max_sockets.min(limit)
        } else {
            max_sockets
        };
        // SAFETY: raw is a live context; failure leaves the default (1023).
        unsafe { zmq_sys::zmq_ctx_set(raw, zmq_sys::ZMQ_MAX_SOCKETS as i32, wanted) };
        // SAFETY: as above; set before the first socket, as libzmq requires.
        unsafe { zmq_sys::zmq_ctx_set(raw, zmq_sys::ZMQ_IO_THREADS as i32, io_threads.max(1)) };
        Ok(Arc::new(Self { raw }))
    }

    /// A new socket of `kind`. It does not keep the context alive: the
    /// caller holds an `Arc<Context>` for as long as the socket lives.
    pub fn socket(&self, kind: zmq::SocketType) -> Result<zmq::Socket, TrackerError> {
        let raw_kind = match kind {
            zmq::PUB => zmq_sys::ZMQ_PUB,
            zmq::SUB => zmq_sys::ZMQ_SUB,
            zmq::XPUB => zmq_sys::ZMQ_XPUB,
            zmq::DEALER => zmq_sys::ZMQ_DEALER,
            zmq::ROUTER => zmq_sys::ZMQ_ROUTER,
            zmq::PAIR => zmq_sys::ZMQ_PAIR,
            other => {
                return Err(TrackerError::Socket {
                    what: format!("{other:?} socket"),
                    reason: "not a socket type the tracker uses".into(),
                })
            }
        };
        // SAFETY: self.raw is a live context (it is terminated only on drop).
        let raw = unsafe { zmq_sys::zmq_socket(self.raw, raw_kind as i32) };
        if raw.is_null() {
            return Err(TrackerError::Socket {
                what: format!("{kind:?} socket"),
                reason: last_error().to_string(),
            });
        }
        // SAFETY: raw is a socket we just created and own; from_raw takes
        // ownership and closes it on drop.
        let socket = unsafe { zmq::Socket::from_raw(raw) };
        socket.set_linger(0).map_err(|e| socket_error(kind, e))?;
        Ok(socket)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: self.raw is a live context and this is its last use.
        while unsafe { zmq_sys::zmq_ctx_term(self.raw) } != 0 && last_error() == zmq::Error::EINTR {
        }
    }
}

/// The context shared by service agents and management clients in this
/// process (two I/O threads for all of them, so that a host with many
/// agents starting at once does not hold up the others' traffic). Managers
/// get their own, because a ZAP handler belongs to a context.
pub fn shared_context() -> Result<Arc<Context>, TrackerError> {
    static SHARED: OnceLock<Arc<Context>> = OnceLock::new();
    if let Some(context) = SHARED.get() {
        return Ok(Arc::clone(context));
    }
    let context = Context::new(2, 32_768)?;
    Ok(Arc::clone(SHARED.get_or_init(|| context)))
}

/// libzmq's error for the call that just failed on this thread.
fn last_error() -> zmq::Error {
    // SAFETY: zmq_errno only reads this thread's errno.
    zmq::Error::from_raw(unsafe { zmq_sys::zmq_errno() })
}

fn socket_error(kind: zmq::SocketType, e: zmq::Error) -> TrackerError {
    TrackerError::Socket {
        what: format!("{kind:?} socket"),
        reason: e.to_string(),
    }
}

/// Applies `limits` to `socket` (size, queues, send timeout, reconnect
/// backoff from 100 ms to 5 s).
pub fn apply_limits(socket: &zmq::Socket, limits: &Limits) -> Result<(), TrackerError> {
    let kind = socket.get_socket_type().unwrap_or(zmq::PAIR);
    let max = i64::try_from(limits.max_message_size).unwrap_or(i64::MAX);
    let hwm = i32::try_from(limits.hwm).unwrap_or(i32::MAX);
    let timeout = i32::try_from(limits.send_timeout.as_millis()).unwrap_or(i32::MAX);
    let set = || -> zmq::Result<()> {
        socket.set_maxmsgsize(max)?;
        socket.set_sndhwm(hwm)?;
        socket.set_rcvhwm(hwm)?;
        socket.set_sndtimeo(timeout)?;
        socket.set_reconnect_ivl(100)?;
        socket.set_reconnect_ivl_max(5000)?;
        Ok(())
    };
    set().map_err(|e| socket_error(kind, e))
}

/// ZMTP heartbeats for a connection between plughost peers: a PING every
/// `interval`, the connection dropped (and, for a connecting socket,
/// re-established) when nothing comes back within three intervals, and the
/// remote side told to drop it after the same silence (`ZMQ_HEARTBEAT_TTL`).
pub fn enable_heartbeats(socket: &zmq::Socket, interval: Duration) -> Result<(), TrackerError> {
    let kind = socket.get_socket_type().unwrap_or(zmq::PAIR);
    let ivl = i32::try_from(interval.as_millis().max(100)).unwrap_or(i32::MAX);
    let timeout = ivl.saturating_mul(3);
    // The TTL travels in deciseconds in a 16-bit field: at most 6553.5 s.
    let ttl = timeout.min(6_553_000);
    let set = || -> zmq::Result<()> {
        socket.set_heartbeat_ivl(ivl)?;
        socket.set_heartbeat_timeout(timeout)?;
        socket.set_heartbeat_ttl(ttl)?;
        Ok(())
    };
    set().map_err(|e| socket_error(kind, e))
}

/// Connections a bound socket's listener queues before libzmq accepts
/// them (`ZMQ_BACKLOG`; the kernel caps it at `net.core.somaxconn`).
///
/// libzmq's default, 100, is far too few for a manager: when a thousand
/// services connect at once (a manager restart, a host's start) the queue
/// overflows, the kernel drops the handshakes it cannot queue, and each
/// dropped peer's TCP retries after 1, 3, 7, 15 s: a thousand agents
/// registering on a busy machine took more than 30 s that way, and a
/// management client found no beacon within 5 s (`tracker` tests; the
/// kernel's `ListenOverflows` counter rose by about 1,400 in one run).
pub const LISTEN_BACKLOG: i32 = 4096;

/// Binds `socket` to `endpoint` (with a [`LISTEN_BACKLOG`] queue) and
/// returns the endpoint actually bound (with the real port when `endpoint`
/// asked for port 0).
pub fn bind(socket: &zmq::Socket, endpoint: &str) -> Result<String, TrackerError> {
    socket
        .set_backlog(LISTEN_BACKLOG)
        .map_err(|e| TrackerError::Bind {
            endpoint: endpoint.to_owned(),
            reason: format!("cannot set the listen backlog: {e}"),
        })?;
    socket.bind(endpoint).map_err(|e| TrackerError::Bind {
        endpoint: endpoint.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(socket
        .get_last_endpoint()
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| endpoint.to_owned()))
}

/// Connects `socket` to `endpoint` (libzmq connects in the background and
/// reconnects by itself; this only fails for a malformed endpoint).
pub fn connect(socket: &zmq::Socket, endpoint: &str) -> Result<(), TrackerError> {
    socket.connect(endpoint).map_err(|e| TrackerError::Connect {
        endpoint: endpoint.to_owned(),
        reason: e.to_string(),
    })
}

/// Wakes a role's thread from any thread or task: a byte written to one end
/// of a Unix socket pair whose other end the thread polls.
#[derive(Clone)]
pub struct Waker(Option<Arc<UnixStream>>);

/// The end of a [`Waker`] that a role's thread polls.
pub struct WakeReceiver(UnixStream);

/// A connected waker and its receiver.
pub fn waker() -> Result<(Waker, WakeReceiver), TrackerError> {
    let io = |e: std::io::Error| TrackerError::Socket {
        what: "waker socket pair".into(),
        reason: e.to_string(),
    };
    let (tx, rx) = UnixStream::pair().map_err(io)?;
    tx.set_nonblocking(true).map_err(io)?;
    rx.set_nonblocking(true).map_err(io)?;
    Ok((Waker(Some(Arc::new(tx))), WakeReceiver(rx)))
}

impl Waker {
    /// A waker for a thread that never started (waking it does nothing).
    pub fn none() -> Self {
        Self(None)
    }

    /// Rouses the thread. A full pipe means a wake-up is already pending.
    pub fn wake(&self) {
        if let Some(tx) = &self.0 {
            let _ = (&**tx).write(&[1]);
        }
    }
}

impl WakeReceiver {
    /// The poll item for this receiver.
    pub fn poll_item(&self) -> zmq::PollItem<'static> {
        zmq::PollItem::from_fd(self.0.as_raw_fd(), zmq::POLLIN)
    }

    /// Consumes pending wake-ups.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.0).read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Connection events worth a log line, read from a socket monitor.
pub const MONITORED_EVENTS: i32 = (zmq_sys::ZMQ_EVENT_ACCEPTED
    | zmq_sys::ZMQ_EVENT_CONNECTED
    | zmq_sys::ZMQ_EVENT_DISCONNECTED
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) as i32;

/// A monitor on one socket: libzmq reports connection events to an inproc
/// PAIR that the owning thread polls beside the socket.
pub struct Monitor {
    socket: zmq::Socket,
    /// What the monitored socket is, for the log (`management`, `discovery`).
    role: &'static str,
}

/// One connection event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A peer connected (or we connected to one).
    Up,
    /// A connection closed: the peer went away, or libzmq dropped it (a
    /// message above the size limit, a protocol error, a heartbeat timeout).
    Dropped,
    /// A handshake failed (protocol error, or CURVE/ZAP refused the peer).
    Refused {
        /// libzmq's error code for it.
        code: u32,
    },
}

impl Monitor {
    /// Starts monitoring `socket` (which must live on this thread).
    pub fn start(
        context: &Context,
        socket: &zmq::Socket,
        role: &'static str,
    ) -> Result<Self, TrackerError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let endpoint = format!("inproc://plughost-monitor-{}-{n}", std::process::id());
        socket
            .monitor(&endpoint, MONITORED_EVENTS)
            .map_err(|e| TrackerError::Socket {
                what: format!("monitor of the {role} socket"),
                reason: e.to_string(),
            })?;
        let reader = context.socket(zmq::PAIR)?;
        reader
            .connect(&endpoint)
            .map_err(|e| TrackerError::Socket {
                what: format!("monitor of the {role} socket"),
                reason: e.to_string(),
            })?;
        Ok(Self {
            socket: reader,
            role,
        })
    }

    /// The poll item for the monitor.
    pub fn poll_item(&self) -> zmq::PollItem<'_> {
        self.socket.as_poll_item(zmq::POLLIN)
    }

    /// Reads and logs every pending event; returns them.
    pub fn drain(&self) -> Vec<ConnectionEvent> {
        let mut events = Vec::new();
        while let Ok(frames) = self.socket.recv_multipart(zmq::DONTWAIT) {
            let Some(head) = frames.first().filter(|f| f.len() >= 6) else {
                continue;
            };
            let event = u32::from(u16::from_le_bytes([head[0], head[1]]));
            let value = u32::from_le_bytes([head[2], head[3], head[4], head[5]]);
            let endpoint = frames
                .get(1)
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .unwrap_or_default();
            let role = self.role;
            let kind = match event {
                e if e == zmq_sys::ZMQ_EVENT_ACCEPTED || e == zmq_sys::ZMQ_EVENT_CONNECTED => {
                    debug!(socket = role, %endpoint, "connection up");
                    ConnectionEvent::Up
                }
                e if e == zmq_sys::ZMQ_EVENT_DISCONNECTED => {
                    info!(socket = role, %endpoint, "connection dropped (the peer closed it, or libzmq did: a message above max_message_size, a protocol error or a heartbeat timeout)");
                    ConnectionEvent::Dropped
                }
                _ => {
                    info!(socket = role, %endpoint, code = value, "connection refused in the handshake (protocol error, or CURVE authentication failed)");
                    ConnectionEvent::Refused { code: value }
                }
            };
            events.push(kind);
        }
        events
    }
}

/// Stops libzmq's monitor on `socket`. Call it before the socket or its
/// [`Monitor`] is dropped: libzmq sends monitor events with a *blocking*
/// send from its own I/O thread, so an event for a monitor whose reader is
/// gone (the socket closing emits some) blocks that I/O thread for good,
/// and with it every socket of the context.
pub fn stop_monitor(socket: &mut zmq::Socket) {
    // SAFETY: the pointer is a live socket owned by `socket`; a null
    // endpoint with no events is zmq_socket_monitor's documented way to stop.
    unsafe {
        zmq_sys::zmq_socket_monitor(socket.as_mut_ptr(), std::ptr::null(), 0);
    }
}

/// Sends `frames` without waiting; false (and a debug line) when libzmq
/// could not queue them (peer gone, queue full).
pub fn send_now(socket: &zmq::Socket, frames: &[&[u8]], what: &str) -> bool {
    match socket.send_multipart(frames.iter().copied(), zmq::DONTWAIT) {
        Ok(()) => true,
        Err(e) => {
            debug!(error = %e, "cannot send {what}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_socket_queues_a_thousand_connecting_peers() {
        let context = zmq::Context::new();
        for kind in [zmq::ROUTER, zmq::XPUB] {
            let socket = context.socket(kind).unwrap();
            let endpoint = bind(&socket, "tcp://127.0.0.1:0").unwrap();
            assert!(endpoint.starts_with("tcp://127.0.0.1:"), "{endpoint}");
            assert!(socket.get_backlog().unwrap() >= 1000);
        }
    }
}
