//! A timing loop over the core, without Python, for profiling (`perf record`,
//! `valgrind --tool=callgrind`) and quick before/after checks:
//!
//! ```sh
//! cargo bench --bench gen -- [--repeats N] [--skeleton] OBJ...
//! ```
//!
//! Prints, per object, the median µs of `open`, `gen_loader` and (with
//! `--skeleton`) `gen_skeleton`; the heap allocations (and reallocations) one
//! `open` and one `gen_loader` make, with the bytes they ask for; the minor page
//! faults of the first pass (cold) and of one later pass; then the geometric
//! mean of open+gen and the process's peak RSS (`peak_rss_kb=`, VmHWM).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// The system allocator, counting what the core asks of it: allocation counts
/// are exact and repeatable where times are noisy.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size.saturating_sub(layout.size()) as u64, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// (allocations, reallocations, bytes) so far.
fn heap() -> [u64; 3] {
    [ALLOCS.load(Relaxed), REALLOCS.load(Relaxed), BYTES.load(Relaxed)]
}

fn since(before: [u64; 3]) -> [u64; 3] {
    let now = heap();
    [now[0] - before[0], now[1] - before[1], now[2] - before[2]]
}

/// Minor page faults of this process so far (/proc/self/stat, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its ')'.
    stat.rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().nth(7))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let mut repeats = 20usize;
    let mut skeleton = false;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeats" => repeats = args.next().and_then(|v| v.parse().ok()).expect("--repeats N"),
            "--skeleton" => skeleton = true,
            "--bench" => {}
            _ => paths.push(a),
        }
    }
    let host = bpfgen_fast::Host::detect();
    let mut log_sum = 0.0;
    let mut n_ok = 0usize;
    println!(
        "{:<32} {:>10} {:>10} {:>10}  {:>16} {:>16} {:>10} {:>10}",
        "object", "open_us", "gen_us", "skel_us", "open_allocs/re", "gen_allocs/re", "alloc_kb", "faults"
    );
    for path in &paths {
        let data = std::fs::read(path).expect("read object");
        let name = bpfgen_fast::default_object_name(path);
        let (mut t_open, mut t_gen, mut t_skel) = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = None;
        let (mut open_heap, mut gen_heap) = ([0; 3], [0; 3]);
        let mut faults = (0, 0);
        for pass in 0..repeats + 1 {
            // Only the first two passes read /proc: the others stay undisturbed.
            let faults_before = if pass < 2 { minor_faults() } else { 0 };
            let heap0 = heap();
            let t0 = Instant::now();
            let obj = match bpfgen_fast::open(&data, &name) {
                Ok(o) => o,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let t1 = Instant::now();
            open_heap = since(heap0);
            let heap1 = heap();
            let blobs = bpfgen_fast::gen_loader(&obj, &host);
            let t2 = Instant::now();
            gen_heap = since(heap1);
            match pass {
                0 => faults.0 = minor_faults() - faults_before,
                1 => faults.1 = minor_faults() - faults_before,
                _ => {}
            }
            let blobs = match blobs {
                Ok(b) => b,
                Err(e) => {
                    // Still report how long it took to get there.
                    t_open.push((t1 - t0).as_secs_f64() * 1e6);
                    t_gen.push((t2 - t1).as_secs_f64() * 1e6);
                    t_skel.push(0.0);
                    failed = Some(e);
                    continue;
                }
            };
            if skeleton {
                std::hint::black_box(bpfgen_fast::gen_skeleton(&obj, &blobs, &host).ok());
            }
            let t3 = Instant::now();
            t_open.push((t1 - t0).as_secs_f64() * 1e6);
            t_gen.push((t2 - t1).as_secs_f64() * 1e6);
            t_skel.push((t3 - t2).as_secs_f64() * 1e6);
        }
        let base = path.rsplit('/').next().unwrap_or(path);
        // The first pass is a warm-up.
        let (o, g, s) = (
            median(&mut t_open[1..]),
            median(&mut t_gen[1..]),
            median(&mut t_skel[1..]),
        );
        if let Some(e) = failed {
            println!("{base:<32} {o:>10.1} {g:>10.1} {:>10} error: {}", "-", e.reason);
            continue;
        }
        let kb = (open_heap[2] + gen_heap[2]) / 1024;
        println!(
            "{base:<32} {o:>10.1} {g:>10.1} {s:>10.1}  {:>16} {:>16} {kb:>10} {:>10}",
            format!("{}/{}", open_heap[0], open_heap[1]),
            format!("{}/{}", gen_heap[0], gen_heap[1]),
            format!("{}/{}", faults.0, faults.1),
        );
        log_sum += (o + g).ln();
        n_ok += 1;
    }
    if n_ok > 0 {
        println!(
            "geomean open+gen over {n_ok} objects: {:.1} us",
            (log_sum / n_ok as f64).exp()
        );
    }
    // VmHWM: this process image's peak RSS (getrusage's ru_maxrss would also
    // count the parent's RSS at fork/vfork time, e.g. cargo's).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kb) = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    {
        println!("peak_rss_kb={kb}");
    }
}
