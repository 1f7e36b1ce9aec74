//! Replies being written on their requests' own channels, looked at by
//! the consumer whenever it wakes instead of each waking it.
//!
//! A request is acknowledged only once its reply is written (ack after
//! reply, `replies`). Were each write's completion to wake the consumer,
//! every reply would cost a thread wake-up from lapin's I/O thread to a
//! tokio worker on top of the one its delivery costs (issue 15 counted the
//! workers' sleeps per call in `docs/benchmarks.md`). So a quick reply's
//! request ends once its frames are queued, handing its write here
//! ([`Writing`]); the consumer looks at the writes whenever it wakes
//! anyway (for the next delivery, mostly) and [`CHECK_AFTER`] after the
//! oldest at the latest, and acknowledges the requests whose replies are
//! out. A reply is never delayed by this, only its request's
//! acknowledgement. lapin writes one connection's frames in the order they
//! were queued, so writes complete in order and the consumer looks at the
//! oldest first.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

/// How long after the oldest write the consumer looks again when nothing
/// else wakes it.
pub(crate) const CHECK_AFTER: Duration = Duration::from_millis(1);

/// A write longer than this failed: the broker stopped reading (the same
/// bound as every other broker operation of the host).
const WRITE_TIMEOUT: Duration = super::replies::BROKER_OP_TIMEOUT;

/// A reply whose frames are queued on its request's channel and not yet
/// seen written.
pub(crate) struct Writing(Pin<Box<dyn Future<Output = Result<(), lapin::Error>> + Send>>);

impl std::fmt::Debug for Writing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writing")
    }
}

impl Writing {
    /// Queues `write` (a publish, whose frames are queued on its first
    /// poll) and returns it unless it is already over.
    pub(crate) fn start(
        write: impl Future<Output = Result<(), lapin::Error>> + Send + 'static,
    ) -> Result<Result<(), lapin::Error>, Self> {
        let mut write = Self(Box::pin(write));
        match write.look() {
            Poll::Ready(done) => Ok(done),
            Poll::Pending => Err(write),
        }
    }

    /// Whether the write is over, without asking to be woken when it is.
    fn look(&mut self) -> Poll<Result<(), lapin::Error>> {
        self.0
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }
}

/// How a request's write ended.
#[derive(Debug)]
pub(crate) enum Written {
    /// The reply is out: acknowledge the request.
    Out(u64),
    /// It failed, or the broker stopped reading for [`WRITE_TIMEOUT`]:
    /// hand the request back.
    Failed(u64, String),
}

/// The writes of one consumer, oldest first.
#[derive(Debug)]
pub(crate) struct Writes {
    queue: VecDeque<(u64, Writing, Instant)>,
    timeout: Duration,
}

impl Default for Writes {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            timeout: WRITE_TIMEOUT,
        }
    }
}

impl Writes {
    /// The write of the reply to request `tag`.
    pub(crate) fn push(&mut self, tag: u64, writing: Writing) {
        self.queue.push_back((tag, writing, Instant::now()));
    }

    /// Whether a write is still being waited for.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Hands over the writes over by now, oldest first.
    pub(crate) fn over(&mut self, mut done: impl FnMut(Written)) {
        while let Some((tag, writing, since)) = self.queue.front_mut() {
            let tag = *tag;
            match writing.look() {
                Poll::Ready(Ok(())) => done(Written::Out(tag)),
                Poll::Ready(Err(e)) => done(Written::Failed(tag, e.to_string())),
                Poll::Pending if since.elapsed() >= self.timeout => done(Written::Failed(
                    tag,
                    format!(
                        "not written within {} ms (the broker stopped reading)",
                        self.timeout.as_millis()
                    ),
                )),
                Poll::Pending => break,
            }
            self.queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    };

    /// A write that is over once `over` is set, and fails when `fails`.
    fn write(
        over: &Arc<AtomicBool>,
        fails: bool,
    ) -> impl Future<Output = Result<(), lapin::Error>> {
        let over = Arc::clone(over);
        std::future::poll_fn(move |_| {
            if !over.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            Poll::Ready(if fails {
                Err(lapin::ErrorKind::InvalidChannelState(
                    lapin::ChannelState::Closed,
                    "basic.publish",
                )
                .into())
            } else {
                Ok(())
            })
        })
    }

    fn over(writes: &mut Writes) -> Vec<String> {
        let mut seen = Vec::new();
        writes.over(|w| {
            seen.push(match w {
                Written::Out(tag) => format!("out {tag}"),
                Written::Failed(tag, _) => format!("failed {tag}"),
            })
        });
        seen
    }

    #[test]
    fn writes_are_handed_over_oldest_first_once_over() {
        let (a, b, c) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let mut writes = Writes::default();
        for (tag, flag, fails) in [(1, &a, false), (2, &b, true), (3, &c, false)] {
            writes.push(tag, Writing::start(write(flag, fails)).unwrap_err());
        }
        assert_eq!(over(&mut writes), Vec::<String>::new());
        b.store(true, Ordering::SeqCst);
        c.store(true, Ordering::SeqCst);
        assert_eq!(over(&mut writes), Vec::<String>::new(), "1 is not over yet");
        a.store(true, Ordering::SeqCst);
        assert_eq!(over(&mut writes), ["out 1", "failed 2", "out 3"]);
        assert!(writes.is_empty());
    }

    #[test]
    fn a_write_the_broker_does_not_take_in_time_failed() {
        let never = Arc::new(AtomicBool::new(false));
        let mut writes = Writes {
            timeout: Duration::ZERO,
            ..Writes::default()
        };
        writes.push(7, Writing::start(write(&never, false)).unwrap_err());
        let mut seen = Vec::new();
        writes.over(|w| seen.push(w));
        assert!(
            matches!(&seen[..], [Written::Failed(7, why)] if why.contains("not written within 0 ms")),
            "{seen:?}"
        );
        assert!(writes.is_empty());
    }

    #[test]
    fn a_write_over_at_once_is_not_kept() {
        let done = Arc::new(AtomicBool::new(true));
        assert!(matches!(Writing::start(write(&done, false)), Ok(Ok(()))));
        assert!(matches!(Writing::start(write(&done, true)), Ok(Err(_))));
    }
}
