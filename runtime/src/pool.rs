//! Workers for short parallel launches: threads that spin between jobs.
//!
//! A parallel task runs for tens to hundreds of microseconds (one wave step,
//! one MPM substep), launch after launch. rayon's idle workers go to sleep
//! within microseconds, and waking one costs 20-130 us on a virtual machine
//! (measured on the 2-vCPU VM: two halves of a 34 us loop took 67 us on two
//! rayon threads), more than such a launch saves. These workers spin on an
//! epoch counter for [`SPIN`] after each job before parking on a condition
//! variable, so back-to-back launches start in about a microsecond (the same
//! 34 us loop: 17.5 us on two threads).
//!
//! One job at a time: [`run`] takes the pool's lock (a caller that finds it
//! taken, such as a launch from another thread, returns `false` and the
//! caller uses rayon). A job is `chunks` calls of a closure, split in one
//! block per participant (the calling thread and `threads - 1` workers):
//! each takes its own block's chunks first, then the others', by atomic
//! tickets; [`run`] returns once every chunk is done, so the closure
//! (borrowed from the caller's stack) outlives every call of it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker spins before it parks.
const SPIN: Duration = Duration::from_millis(2);

/// The job workers run: a type-erased `&(dyn Fn(usize) + Sync)`.
#[derive(Clone, Copy)]
struct Job {
    call: *const (dyn Fn(usize) + Sync),
    chunks: u64,
    /// Workers with a smaller index take part.
    participants: usize,
}

// SAFETY: a Job's closure is only called for a chunk taken while its job
// is current, and `run` (which made it from a `Sync` closure) waits for
// every taken chunk to finish.
unsafe impl Send for Job {}

struct Shared {
    /// The current job's number, bumped once per job after `job` and `tickets`.
    epoch: AtomicU64,
    /// The current job, with its number.
    job: Mutex<(u64, Option<Job>)>,
    /// Per participant (the caller first, then the workers), its block of
    /// chunks' ticket: the job's number (high 32 bits) and the next chunk of
    /// the block (low 32 bits). A chunk is taken by a compare-and-swap that
    /// fails once the job changed, so a late worker never runs a chunk of a
    /// job it did not read. Each participant takes its own block's chunks
    /// first (the same rows, launch after launch, stay in its core's cache),
    /// then the others'.
    tickets: Vec<AtomicU64>,
    /// Chunks of the current job finished.
    done: AtomicUsize,
    parked: Mutex<()>,
    wake: Condvar,
}

struct Pool {
    shared: &'static Shared,
    workers: usize,
    /// Held by the caller whose job runs.
    busy: Mutex<()>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            epoch: AtomicU64::new(0),
            job: Mutex::new((0, None)),
            tickets: (0..cores).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicUsize::new(0),
            parked: Mutex::new(()),
            wake: Condvar::new(),
        }));
        let workers = (0..cores.saturating_sub(1))
            .filter(|&index| {
                std::thread::Builder::new().name(format!("ds-worker-{index}")).spawn(move || work(shared, index)).is_ok()
            })
            .count();
        Pool { shared, workers, busy: Mutex::new(()) }
    })
}

/// The chunks of block `b` of a job of `chunks` chunks split in `blocks`.
fn block(chunks: u64, blocks: u64, b: u64) -> (u64, u64) {
    (chunks * b / blocks, chunks * (b + 1) / blocks)
}

/// Participant `me` runs chunks of job number `epoch`, its own block's
/// first, then the other blocks', until none is left or the job changed.
fn take_chunks(shared: &Shared, epoch: u64, job: Job, me: usize) {
    let tag = (epoch & 0xffff_ffff) << 32;
    let blocks = job.participants + 1;
    for b in (0..blocks).map(|k| (me + k) % blocks) {
        let (start, end) = block(job.chunks, blocks as u64, b as u64);
        let ticket = &shared.tickets[b];
        loop {
            let t = ticket.load(Ordering::Acquire);
            let chunk = start + (t & 0xffff_ffff);
            if t & !0xffff_ffff != tag || chunk >= end {
                break;
            }
            if ticket.compare_exchange_weak(t, t + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                // SAFETY: the chunk was taken while this job was current, and
                // `run` keeps the closure alive until every taken chunk is done.
                unsafe { (*job.call)(chunk as usize) };
                shared.done.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

fn work(shared: &'static Shared, index: usize) {
    let mut seen = 0;
    loop {
        // Spin for the next job, then park.
        let since = Instant::now();
        let mut spins = 0u32;
        while shared.epoch.load(Ordering::Acquire) == seen {
            spins = spins.wrapping_add(1);
            std::hint::spin_loop();
            if spins.is_multiple_of(1024) && since.elapsed() > SPIN {
                let guard = shared.parked.lock().unwrap_or_else(|e| e.into_inner());
                drop(shared.wake.wait_while(guard, |_| shared.epoch.load(Ordering::Acquire) == seen));
            }
        }
        seen = shared.epoch.load(Ordering::Acquire);
        let (epoch, job) = *shared.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(job) = job.filter(|j| index < j.participants) {
            take_chunks(shared, epoch, job, index + 1);
        }
    }
}

/// Runs `call(0) .. call(chunks - 1)` on the calling thread and `threads - 1`
/// workers (as many as there are), each chunk once; returns when all are
/// done. `false` (nothing run) when another job holds the pool or there are
/// no workers: the caller runs the chunks another way.
pub fn run(threads: usize, chunks: usize, call: &(dyn Fn(usize) + Sync)) -> bool {
    let pool = pool();
    let participants = threads.saturating_sub(1).min(pool.workers);
    if participants == 0 || chunks >= 1 << 32 {
        return false;
    }
    let Ok(_busy) = pool.busy.try_lock() else { return false };
    let shared = pool.shared;
    // SAFETY (of the lifetime erasure): the closure is called only for
    // chunks taken while this job is current, and this function returns
    // only after every one of them is done.
    let call: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(call) };
    let job = Job { call, chunks: chunks as u64, participants };
    let epoch = shared.epoch.load(Ordering::Acquire).wrapping_add(1);
    *shared.job.lock().unwrap_or_else(|e| e.into_inner()) = (epoch, Some(job));
    shared.done.store(0, Ordering::Release);
    for ticket in &shared.tickets[..=participants] {
        ticket.store((epoch & 0xffff_ffff) << 32, Ordering::Release);
    }
    shared.epoch.store(epoch, Ordering::Release);
    // Parked workers: wake them (the lock taken after the bump, so none misses it).
    drop(shared.parked.lock().unwrap_or_else(|e| e.into_inner()));
    shared.wake.notify_all();
    take_chunks(shared, epoch, job, 0);
    while shared.done.load(Ordering::Acquire) != chunks {
        std::hint::spin_loop();
    }
    true
}
