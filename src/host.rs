//! Facts about the build host that libbpf bakes into a loader. They are one
//! explicit value so output can be reproduced on any machine; `Host::detect`
//! reads them the way libbpf does.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `sysconf(_SC_PAGE_SIZE)`: ringbuf sizes and skeleton mmap sizes.
    pub page_size: u32,
    /// Number of possible CPUs: the size of a PERF_EVENT_ARRAY without max_entries.
    pub possible_cpus: u32,
}

impl Default for Host {
    fn default() -> Self {
        Host::detect()
    }
}

/// Count the CPUs in a kernel CPU list such as `0-3,8,10-11`.
pub fn count_cpu_list(list: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let v = part.trim().parse::<u32>().ok()?;
                (v, v)
            }
        };
        if hi < lo {
            return None;
        }
        n = n.checked_add(hi - lo + 1)?;
    }
    (n > 0).then_some(n)
}

impl Host {
    pub fn detect() -> Host {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let possible_cpus = std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| count_cpu_list(&s))
            .unwrap_or(1);
        Host {
            page_size: if page > 0 { page as u32 } else { 4096 },
            possible_cpus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::count_cpu_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("x"), None);
    }
}
