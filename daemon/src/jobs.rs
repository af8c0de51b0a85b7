//! The job queue: engine work runs on worker threads, never on the I/O tasks. Interactive jobs
//! (one image, one unit) are taken before sweeps (embed, top units, maximize), and worker 0 only
//! ever takes interactive jobs, so a long sweep never holds up a click. The queue is bounded: a
//! full queue refuses work (the client hears "busy").

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use convlens_shared::methods::status::Queue;

use convlens_shared::sync::lock;

/// How urgent a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A single image or unit: someone is waiting to see it.
    Interactive,
    /// A pass over many images or many steps.
    Sweep,
}

/// A unit of work; it runs once, on a worker thread.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct Waiting {
    interactive: VecDeque<Job>,
    sweeps: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    waiting: Mutex<Waiting>,
    ready: Condvar,
    running: AtomicUsize,
    completed: AtomicU64,
    /// How many times freed memory was asked back ([`JobQueue::release_free_memory`]).
    releases_asked: AtomicU64,
}

/// The queue and its workers.
pub struct JobQueue {
    shared: Arc<Shared>,
    capacity: usize,
    workers: usize,
}

/// The queue is full.
#[derive(Debug)]
pub struct Busy;

impl JobQueue {
    /// Starts `workers` threads (at least 2) serving a queue of at most `capacity` jobs.
    pub fn start(workers: usize, capacity: usize) -> std::io::Result<JobQueue> {
        let workers = workers.max(2);
        let shared = Arc::new(Shared {
            waiting: Mutex::new(Waiting::default()),
            ready: Condvar::new(),
            running: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            releases_asked: AtomicU64::new(0),
        });
        for index in 0..workers {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("convlens-worker-{index}"))
                .spawn(move || work(&shared, index == 0))?;
        }
        Ok(JobQueue {
            shared,
            capacity,
            workers,
        })
    }

    /// Queues `job`; refuses when the queue is full or closed.
    pub fn submit(&self, priority: Priority, job: Job) -> Result<(), Busy> {
        let mut w = lock(&self.shared.waiting);
        if w.closed || w.interactive.len() + w.sweeps.len() >= self.capacity {
            return Err(Busy);
        }
        match priority {
            Priority::Interactive => w.interactive.push_back(job),
            Priority::Sweep => w.sweeps.push_back(job),
        }
        drop(w);
        self.shared.ready.notify_all();
        Ok(())
    }

    /// Lets the workers finish what is queued and stop.
    pub fn close(&self) {
        lock(&self.shared.waiting).closed = true;
        self.shared.ready.notify_all();
    }

    /// Asks every worker to give its thread's free memory back to the system when it is next
    /// idle (mimalloc keeps a thread's free pages until that thread collects them).
    pub fn release_free_memory(&self) {
        self.shared.releases_asked.fetch_add(1, Ordering::SeqCst);
        self.shared.ready.notify_all();
    }

    /// Jobs waiting, running and done.
    pub fn stats(&self) -> Queue {
        let w = lock(&self.shared.waiting);
        Queue {
            interactive: w.interactive.len(),
            sweeps: w.sweeps.len(),
            running: self.shared.running.load(Ordering::SeqCst),
            workers: self.workers,
            completed: self.shared.completed.load(Ordering::SeqCst),
        }
    }

    /// Whether nothing waits or runs.
    pub fn is_idle(&self) -> bool {
        let s = self.stats();
        s.interactive + s.sweeps + s.running == 0
    }
}

/// A worker: takes interactive jobs first (only those when `interactive_only`), runs them.
fn work(shared: &Shared, interactive_only: bool) {
    let mut releases_done = 0;
    loop {
        let job = {
            let mut w = lock(&shared.waiting);
            loop {
                let next = match w.interactive.pop_front() {
                    Some(j) => Some(j),
                    None if !interactive_only => w.sweeps.pop_front(),
                    None => None,
                };
                if let Some(j) = next {
                    shared.running.fetch_add(1, Ordering::SeqCst);
                    break j;
                }
                if w.closed {
                    return;
                }
                let asked = shared.releases_asked.load(Ordering::SeqCst);
                if asked != releases_done {
                    releases_done = asked;
                    drop(w);
                    convlens_models::allocator::release_thread_free_memory();
                    w = lock(&shared.waiting);
                    continue;
                }
                w = shared.ready.wait(w).unwrap_or_else(|e| e.into_inner());
            }
        };
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a job panicked; its request was answered with an internal error");
        }
        shared.running.fetch_sub(1, Ordering::SeqCst);
        shared.completed.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn interactive_jobs_overtake_waiting_sweeps() {
        let q = JobQueue::start(2, 100).unwrap();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate_rx));
        let (done_tx, done_rx) = mpsc::channel::<&'static str>();
        // Hold the sweep worker so that the next jobs wait in the queue.
        let g = Arc::clone(&gate);
        let started = Arc::new((Mutex::new(false), Condvar::new()));
        let s = Arc::clone(&started);
        q.submit(
            Priority::Sweep,
            Box::new(move || {
                *s.0.lock().unwrap() = true;
                s.1.notify_all();
                g.lock().unwrap().recv().unwrap();
            }),
        )
        .unwrap();
        let mut flag = started.0.lock().unwrap();
        while !*flag {
            flag = started.1.wait(flag).unwrap();
        }
        drop(flag);
        let tx = done_tx.clone();
        q.submit(Priority::Sweep, Box::new(move || tx.send("sweep").unwrap()))
            .unwrap();
        let tx = done_tx.clone();
        q.submit(
            Priority::Interactive,
            Box::new(move || tx.send("interactive").unwrap()),
        )
        .unwrap();
        // Worker 0 takes only interactive work: the interactive job runs while the sweep waits.
        assert_eq!(done_rx.recv().unwrap(), "interactive");
        assert_eq!(q.stats().sweeps, 1);
        gate_tx.send(()).unwrap();
        assert_eq!(done_rx.recv().unwrap(), "sweep");
    }

    #[test]
    fn a_full_queue_refuses_work() {
        let q = JobQueue::start(2, 0).unwrap();
        assert!(q.submit(Priority::Interactive, Box::new(|| {})).is_err());
    }
}
