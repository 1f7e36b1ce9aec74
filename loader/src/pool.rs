//! [`PluginPool`]: the threads one plugin instance's calls run on (its bulkhead).
//!
//! Plugin calls are blocking, and a plugin can get stuck: a call that never
//! returns keeps its thread forever (threads cannot be cancelled). If every
//! plugin shared one pool (tokio's blocking pool, as before), one stuck
//! plugin could take all of its threads and starve the others. So each
//! plugin instance gets threads of its own, at most `limit` of them: a stuck
//! plugin costs only its own threads, and the registry checks at load time
//! that every limit together fits the host's budget.
//!
//! Threads start on demand (an idle host holds none) and leave after a
//! minute without work, so a burst does not keep its threads for ever. A job
//! carries its deadline: a job still queued when its deadline passes is
//! never run (its caller has had a 504 already, and a late side effect
//! would surprise it).

use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Condvar, Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

/// How long a thread waits for work before it leaves.
const IDLE_EXIT: Duration = Duration::from_secs(60);

/// Work for a pool thread: runs the call, or is told it expired.
pub trait PoolJob: Send + 'static {
    /// Runs the job on a pool thread.
    fn run(self: Box<Self>);
    /// Called instead of `run` when the deadline passed while it was queued.
    fn expire(self: Box<Self>);
}

struct Queued {
    job: Box<dyn PoolJob>,
    deadline: Instant,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    /// Threads alive (busy or idle).
    threads: usize,
    /// Threads waiting for work.
    idle: usize,
    /// No more jobs: the pool's owner is gone.
    closed: bool,
}

struct Shared {
    /// For thread names and logs.
    plugin: String,
    limit: AtomicUsize,
    state: Mutex<State>,
    work: Condvar,
}

/// A bounded, on-demand pool of threads for one plugin instance.
pub struct PluginPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PluginPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPool")
            .field("plugin", &self.shared.plugin)
            .field("limit", &self.limit())
            .field("threads", &self.threads())
            .finish()
    }
}

/// The pool cannot take the job: its plugin is being dropped, or no thread
/// could be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugin {plugin}: {reason}")]
pub struct PoolRefused {
    /// The plugin.
    pub plugin: String,
    /// Why.
    pub reason: String,
}

impl PluginPool {
    /// A pool for `plugin` that runs at most `limit` calls at once.
    pub fn new(plugin: impl Into<String>, limit: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                plugin: plugin.into(),
                limit: AtomicUsize::new(limit.max(1)),
                state: Mutex::new(State::default()),
                work: Condvar::new(),
            }),
        }
    }

    /// The most threads it may run.
    pub fn limit(&self) -> usize {
        self.shared.limit.load(Ordering::Relaxed)
    }

    /// Changes the limit (a reload that keeps the instance but changes its
    /// share); threads above a lowered limit leave when they are next idle.
    pub fn set_limit(&self, limit: usize) {
        self.shared.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// Threads alive now (busy or idle).
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Calls waiting for a thread now.
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Queues `job`; it runs on a pool thread unless `deadline` passes first.
    pub fn submit(&self, job: Box<dyn PoolJob>, deadline: Instant) -> Result<(), PoolRefused> {
        let mut state = self.shared.lock();
        if state.closed {
            return Err(self.refused("its pool is closed"));
        }
        state.queue.push_back(Queued { job, deadline });
        if state.idle >= state.queue.len() || state.threads >= self.limit() {
            self.shared.work.notify_one();
            return Ok(());
        }
        state.threads += 1;
        drop(state);
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name(format!("plugin-{}", self.shared.plugin))
            .spawn(move || shared.work_loop());
        if let Err(e) = spawned {
            let mut state = self.shared.lock();
            state.threads -= 1;
            if state.threads == 0 {
                // No thread will ever take them: answer them now rather than let them wait.
                let stranded: Vec<Queued> = state.queue.drain(..).collect();
                drop(state);
                for queued in stranded {
                    queued.job.expire();
                }
                return Err(self.refused(&format!("cannot start a thread: {e}")));
            }
        }
        Ok(())
    }

    fn refused(&self, reason: &str) -> PoolRefused {
        PoolRefused {
            plugin: self.shared.plugin.clone(),
            reason: reason.to_owned(),
        }
    }
}

impl Drop for PluginPool {
    fn drop(&mut self) {
        // Idle threads leave now; busy ones after their job (a stuck one never).
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn work_loop(self: Arc<Self>) {
        let mut state = self.lock();
        loop {
            if let Some(queued) = state.queue.pop_front() {
                drop(state);
                if Instant::now() >= queued.deadline {
                    queued.job.expire();
                } else {
                    queued.job.run();
                }
                state = self.lock();
                continue;
            }
            if state.closed || state.threads > self.limit.load(Ordering::Relaxed) {
                break;
            }
            state.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout_while(state, IDLE_EXIT, |s| s.queue.is_empty() && !s.closed)
                .unwrap_or_else(|p| p.into_inner());
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A job that reports on a channel whether it ran or expired, after
    /// blocking until `release` says go.
    struct Probe {
        id: usize,
        release: Option<Arc<(Mutex<bool>, Condvar)>>,
        done: mpsc::Sender<(usize, bool)>,
    }

    impl PoolJob for Probe {
        fn run(self: Box<Self>) {
            if let Some(gate) = &self.release {
                let (open, cv) = &**gate;
                let guard = open.lock().unwrap();
                let _open = cv.wait_while(guard, |o| !*o).unwrap();
            }
            let _ = self.done.send((self.id, true));
        }
        fn expire(self: Box<Self>) {
            let _ = self.done.send((self.id, false));
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn never_runs_more_than_its_limit_and_queues_the_rest() {
        let pool = PluginPool::new("t", 2);
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        for id in 0..5 {
            let job = Probe {
                id,
                release: Some(Arc::clone(&gate)),
                done: tx.clone(),
            };
            pool.submit(Box::new(job), later()).unwrap();
        }
        // Two threads block in their jobs; the other three wait in the queue.
        while pool.queued() != 3 {
            std::thread::yield_now();
        }
        assert_eq!(pool.threads(), 2);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let mut ran: Vec<_> = (0..5).map(|_| rx.recv().unwrap()).collect();
        ran.sort();
        assert_eq!(ran, (0..5).map(|i| (i, true)).collect::<Vec<_>>());
    }

    #[test]
    fn a_job_whose_deadline_passed_in_the_queue_is_not_run() {
        let pool = PluginPool::new("t", 1);
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (tx, rx) = mpsc::channel();
        let blocker = Probe {
            id: 0,
            release: Some(Arc::clone(&gate)),
            done: tx.clone(),
        };
        pool.submit(Box::new(blocker), later()).unwrap();
        let late = Probe {
            id: 1,
            release: None,
            done: tx,
        };
        pool.submit(Box::new(late), Instant::now() + Duration::from_millis(1))
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert_eq!(rx.recv().unwrap(), (0, true));
        assert_eq!(rx.recv().unwrap(), (1, false), "expired, not run");
    }

    #[test]
    fn dropping_the_pool_refuses_nothing_queued_and_lets_idle_threads_go() {
        let pool = PluginPool::new("t", 4);
        let (tx, rx) = mpsc::channel();
        for id in 0..4 {
            let job = Probe {
                id,
                release: None,
                done: tx.clone(),
            };
            pool.submit(Box::new(job), later()).unwrap();
        }
        for _ in 0..4 {
            assert!(rx.recv().unwrap().1);
        }
        let shared = Arc::clone(&pool.shared);
        drop(pool);
        let started = Instant::now();
        while shared.lock().threads > 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "threads left");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
