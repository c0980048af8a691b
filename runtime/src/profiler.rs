//! The kernel profiler, as Taichi's `kernel_profiler`: while it is on, every
//! launch on any program (CPU or CUDA; a CUDA launch then waits for the GPU)
//! adds its wall time to its kernel's total. Off by default, when a launch
//! pays one relaxed atomic load. Process-wide, like Taichi's.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static ENABLED: AtomicBool = AtomicBool::new(false);
static TOTALS: Mutex<BTreeMap<String, KernelTime>> = Mutex::new(BTreeMap::new());

/// One kernel's launches and their total wall time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KernelTime {
    pub kernel: String,
    pub launches: u64,
    pub total: Duration,
}

/// Turns the profiler on or off (the totals are kept).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Forgets the totals.
pub fn reset() {
    TOTALS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The totals, the most expensive kernel first.
pub fn totals() -> Vec<KernelTime> {
    let mut all: Vec<KernelTime> = TOTALS.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
    all.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.kernel.cmp(&b.kernel)));
    all
}

/// Runs `launch` (kernel `kernel`), timing it while the profiler is on.
pub(crate) fn time<R>(kernel: &str, launch: impl FnOnce() -> R) -> R {
    if !is_enabled() {
        return launch();
    }
    let start = Instant::now();
    let result = launch();
    let elapsed = start.elapsed();
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let entry = totals.entry(kernel.to_string()).or_insert_with(|| KernelTime { kernel: kernel.to_string(), ..Default::default() });
    entry.launches += 1;
    entry.total += elapsed;
    result
}
