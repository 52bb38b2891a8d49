//! Facts about the build host that libbpf bakes into a loader. They are one
//! explicit value so output can be reproduced on any machine. `Host::detect`
//! reads page size and CPU count the way libbpf does; kernel version, kernel
//! config and kallsyms are read from the host only when an object needs them
//! and no explicit value was given.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// `sysconf(_SC_PAGE_SIZE)`: ringbuf sizes and skeleton mmap sizes.
    pub page_size: u32,
    /// Number of possible CPUs: the size of a PERF_EVENT_ARRAY without max_entries.
    pub possible_cpus: u32,
    /// `LINUX_KERNEL_VERSION` (KERNEL_VERSION(a, b, c) encoding); None: this host's.
    pub kernel_version: Option<u32>,
    /// Kernel config text (`CONFIG_X=y` lines); None: `/boot/config-$(uname -r)` or `/proc/config.gz`.
    pub kconfig: Option<Arc<str>>,
    /// `CONFIG_X=value` lines that win over the kernel config.
    pub kconfig_extra: Option<Arc<str>>,
    /// `/proc/kallsyms`-format text for typeless ksyms; None: this host's `/proc/kallsyms`.
    pub kallsyms: Option<Arc<str>>,
    /// Kernel BTF giving struct_ops layouts; None: [`DEFAULT_KERNEL_BTF`].
    /// Read only for objects with struct_ops maps.
    pub kernel_btf: Option<std::path::PathBuf>,
}

/// Where the running kernel publishes its BTF.
pub const DEFAULT_KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

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

/// KERNEL_VERSION(a, b, c) with the patch level saturated at 255.
pub fn kernel_version_code(major: u32, minor: u32, patch: u32) -> u32 {
    (major << 16) + (minor << 8) + patch.min(255)
}

/// `"X.Y.Z"` (digits only; whitespace around it allowed) as
/// `KERNEL_VERSION(X, Y, Z)`; None for any other text, or for numbers whose
/// code does not fit in 32 bits. What `--kernel-version` and the facade's
/// `kernel_version="X.Y.Z"` accept.
pub fn parse_kernel_version(text: &str) -> Option<u32> {
    let parts: Vec<&str> = text.trim().split('.').collect();
    let &[major, minor, patch] = &parts[..] else {
        return None;
    };
    let num = |p: &str| -> Option<u32> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse().ok()
    };
    let (major, minor, patch) = (num(major)?, num(minor)?, num(patch)?);
    let wide = (u64::from(major) << 16) + (u64::from(minor) << 8) + u64::from(patch.min(255));
    u32::try_from(wide).ok()?;
    Some(kernel_version_code(major, minor, patch))
}

fn three_numbers(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.splitn(3, '.');
    let num = |p: Option<&str>| -> Option<u32> {
        let p = p?;
        let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    };
    Some((num(it.next())?, num(it.next())?, num(it.next())?))
}

/// Kernel version the way libbpf derives it: Ubuntu's version_signature,
/// Debian's version string, then the release.
pub fn version_from(signature: Option<&str>, release: &str, version: &str) -> Option<u32> {
    if let Some(sig) = signature
        && let Some(v) = sig.split_whitespace().nth(2).and_then(three_numbers)
    {
        return Some(kernel_version_code(v.0, v.1, v.2));
    }
    if let Some(p) = version.find("Debian ")
        && let Some(v) = three_numbers(&version[p + 7..])
    {
        return Some(kernel_version_code(v.0, v.1, v.2));
    }
    three_numbers(release).map(|v| kernel_version_code(v.0, v.1, v.2))
}

fn uname() -> (String, String) {
    // SAFETY: utsname is plain data; uname fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::new(), String::new());
    }
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (field(&u.release), field(&u.version))
}

/// Read a possibly gzip-compressed text file (gzopen accepts both), such as
/// `/proc/config.gz`. Bytes that are not UTF-8 become U+FFFD, compressed or
/// not: a config is ASCII, and one stray byte should not hide every option.
/// The one reader of kernel config files, for the CLI and the Python facade.
pub fn read_maybe_gz(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    let raw = std::fs::read(path)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    } else {
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }
}

impl Host {
    /// This machine's facts, with the page size and possible-CPU count a
    /// caller pins (the command line's `--page-size` / `--possible-cpus`, the
    /// API's `page_size=` / `possible_cpus=`) in place of the detected ones.
    pub fn detect_pinned(page_size: Option<u32>, possible_cpus: Option<u32>) -> Host {
        let detected = Host::detect();
        Host {
            page_size: page_size.unwrap_or(detected.page_size),
            possible_cpus: possible_cpus.unwrap_or(detected.possible_cpus),
            ..detected
        }
    }

    pub fn detect() -> Host {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        // The possible-CPU mask is fixed at boot: read once per process.
        static POSSIBLE_CPUS: OnceLock<u32> = OnceLock::new();
        let possible_cpus = *POSSIBLE_CPUS.get_or_init(|| {
            std::fs::read_to_string("/sys/devices/system/cpu/possible")
                .ok()
                .and_then(|s| count_cpu_list(&s))
                .unwrap_or(1)
        });
        Host {
            page_size: if page > 0 { page as u32 } else { 4096 },
            possible_cpus,
            kernel_version: None,
            kconfig: None,
            kconfig_extra: None,
            kallsyms: None,
            kernel_btf: None,
        }
    }
}

/// What extern resolution (`externs::resolve`) asks of the build host, each
/// produced only when an object needs it. Texts are shared (`Arc<str>`), not
/// copied per object: a kernel config is hundreds of KiB and kallsyms
/// several MiB.
pub trait ResolveInputs {
    fn kernel_version(&self) -> Result<u32>;
    fn kconfig(&self) -> Result<Arc<str>>;
    /// Values that take precedence over the kernel config (libbpf's open-time `kconfig` option).
    fn kconfig_extra(&self) -> Option<Arc<str>> {
        None
    }
    fn kallsyms(&self) -> Result<Arc<str>>;
}

/// The running kernel's version and config cannot change while it runs, so
/// each process reads them at most once (a successful read is kept; a
/// failure is retried). Performance: decompressing `/proc/config.gz` for
/// every object dominated the time of small objects with `CONFIG_` externs.
/// kallsyms is not cached (modules come and go); batches read it once.
static SYSTEM_KERNEL_VERSION: OnceLock<u32> = OnceLock::new();
static SYSTEM_KCONFIG: OnceLock<Arc<str>> = OnceLock::new();

impl ResolveInputs for Host {
    fn kernel_version(&self) -> Result<u32> {
        if let Some(v) = self.kernel_version.or_else(|| SYSTEM_KERNEL_VERSION.get().copied()) {
            return Ok(v);
        }
        let signature = std::fs::read_to_string("/proc/version_signature").ok();
        let (release, version) = uname();
        let v = version_from(signature.as_deref(), &release, &version)
            .ok_or_else(|| Error::unsupported("extern (kcfg) 'LINUX_KERNEL_VERSION': failed to get kernel version"))?;
        Ok(*SYSTEM_KERNEL_VERSION.get_or_init(|| v))
    }

    fn kconfig(&self) -> Result<Arc<str>> {
        if let Some(text) = self.kconfig.as_ref().or_else(|| SYSTEM_KCONFIG.get()) {
            return Ok(text.clone());
        }
        let (release, _) = uname();
        let text: Arc<str> = read_maybe_gz(format!("/boot/config-{release}"))
            .or_else(|_| read_maybe_gz("/proc/config.gz"))
            .map_err(|_| Error::unsupported("failed to open system Kconfig (give one with --kconfig-file)"))?
            .into();
        Ok(SYSTEM_KCONFIG.get_or_init(|| text).clone())
    }

    fn kconfig_extra(&self) -> Option<Arc<str>> {
        self.kconfig_extra.clone()
    }

    fn kallsyms(&self) -> Result<Arc<str>> {
        if let Some(text) = &self.kallsyms {
            return Ok(text.clone());
        }
        std::fs::read_to_string("/proc/kallsyms")
            .map(Into::into)
            .map_err(|e| Error::unsupported(format!("failed to open /proc/kallsyms: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::{count_cpu_list, version_from};

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn kernel_version_text() {
        use super::parse_kernel_version as parse;
        assert_eq!(parse("6.12.3"), Some(0x60c03));
        assert_eq!(parse(" 4.19.260\n"), Some((4 << 16) + (19 << 8) + 255));
        for bad in [
            "6.12",
            "6.12.3.1",
            "6..3",
            "v6.12.3",
            "6.12.-3",
            "6.12.+3",
            "65536.0.0",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse("65535.255.255"), Some(u32::MAX));
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(version_from(None, "6.18.44-fc-v782", "#1 SMP"), Some(0x61200 + 44));
        assert_eq!(
            version_from(None, "4.19.0-22-amd64", "#1 SMP Debian 4.19.260-1 (2022-09-29)"),
            Some((4 << 16) + (19 << 8) + 255)
        );
        assert_eq!(
            version_from(Some("Ubuntu 5.4.0-12.15-generic 5.4.8"), "5.4.0", ""),
            Some((5 << 16) + (4 << 8) + 8)
        );
    }
}
