//! A timing loop over the core, without Python, for profiling (`perf record`,
//! `valgrind --tool=callgrind`) and quick before/after checks:
//!
//! ```sh
//! cargo bench --bench gen -- [--repeats N] [--skeleton] OBJ...
//! ```
//!
//! Prints, per object, the median µs of `open`, `gen_loader` and (with
//! `--skeleton`) `gen_skeleton`, then the geometric mean of open+gen and the
//! process's peak RSS (`peak_rss_kb=`, VmHWM).

use std::time::Instant;

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
    println!("{:<32} {:>10} {:>10} {:>10}", "object", "open_us", "gen_us", "skel_us");
    for path in &paths {
        let data = std::fs::read(path).expect("read object");
        let name = bpfgen_fast::default_object_name(path);
        let (mut t_open, mut t_gen, mut t_skel) = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = None;
        for _ in 0..repeats + 1 {
            let t0 = Instant::now();
            let obj = match bpfgen_fast::open(&data, &name) {
                Ok(o) => o,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let t1 = Instant::now();
            let blobs = bpfgen_fast::gen_loader(&obj, &host);
            let t2 = Instant::now();
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
        println!("{base:<32} {o:>10.1} {g:>10.1} {s:>10.1}");
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
