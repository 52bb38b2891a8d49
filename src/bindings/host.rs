//! Host facts from Python: a dict of `host_args`' keys, or a `HostSpec`
//! converted once and used in place.

use crate::host::Host;
use pyo3::prelude::*;

/// Host facts: this machine's unless given explicitly (see `Host`).
#[derive(FromPyObject, Default)]
pub(super) struct HostArgs {
    #[pyo3(item)]
    pub(super) page_size: Option<u32>,
    #[pyo3(item)]
    pub(super) possible_cpus: Option<u32>,
    #[pyo3(item)]
    pub(super) kernel_version: Option<u32>,
    #[pyo3(item)]
    pub(super) kconfig: Option<String>,
    #[pyo3(item)]
    pub(super) kconfig_extra: Option<String>,
    #[pyo3(item)]
    pub(super) kallsyms: Option<String>,
    /// Kernel BTF file for struct_ops layouts (None: /sys/kernel/btf/vmlinux).
    #[pyo3(item)]
    pub(super) kernel_btf: Option<std::path::PathBuf>,
    /// Header style: "bpftool-7.5" (default) or "bpftool-7.8".
    #[pyo3(item)]
    pub(super) compat: Option<String>,
    /// Test-only: bpftool 7.5.0's (wrong) prog-fd slots for `?` programs.
    #[pyo3(item)]
    pub(super) bpftool_prog_slots: Option<bool>,
    /// Test-only: bpftool 7.5.0's (wrong) lookups of `name___flavour` ksyms.
    #[pyo3(item)]
    pub(super) bpftool_ksym_names: Option<bool>,
    /// Test-only: libbpf 1.8's host-order `.kconfig` values for bpfeb objects.
    #[pyo3(item)]
    pub(super) bpftool_kconfig_host_order: Option<bool>,
    /// Test-only: libbpf 1.5's map BTF ids where the kernel refuses them.
    #[pyo3(item)]
    pub(super) bpftool_map_btf_ids: Option<bool>,
    /// libbpf 1.8's `gen_hash`: the loader of a signed light skeleton
    /// (implied by `signature`). Optional key.
    #[pyo3(item, default)]
    pub(super) gen_hash: Option<bool>,
    /// The CMS signature over the `gen_hash` loader's instructions: makes
    /// `gen_skeleton` print a signed header (bpftool 7.8.0's `-S`). Optional key.
    #[pyo3(item, default)]
    pub(super) signature: Option<Vec<u8>>,
}

impl HostArgs {
    /// The host facts plus the test-only bpftool-compatibility options.
    pub(super) fn into_host_and_options(self) -> (Host, crate::generate::GenOptions) {
        let opts = self.options();
        (self.into_host(), opts)
    }

    /// Generation choices; `compat` was validated by the Python facade
    /// (`host_args`), anything else falls back to bpftool 7.5.0's style.
    pub(super) fn options(&self) -> crate::generate::GenOptions {
        crate::generate::GenOptions {
            compat: self
                .compat
                .as_deref()
                .and_then(crate::generate::Compat::parse)
                .unwrap_or_default(),
            bpftool_prog_slots: self.bpftool_prog_slots.unwrap_or(false),
            bpftool_ksym_names: self.bpftool_ksym_names.unwrap_or(false),
            bpftool_kconfig_host_order: self.bpftool_kconfig_host_order.unwrap_or(false),
            bpftool_map_btf_ids: self.bpftool_map_btf_ids.unwrap_or(false),
            gen_hash: self.gen_hash.unwrap_or(false) || self.signature.is_some(),
        }
    }

    pub(super) fn into_host(self) -> Host {
        let mut host = Host::detect_pinned(self.page_size, self.possible_cpus);
        host.kernel_version = self.kernel_version;
        host.kconfig = self.kconfig.map(Into::into);
        host.kconfig_extra = self.kconfig_extra.map(Into::into);
        host.kallsyms = self.kallsyms.map(Into::into);
        host.kernel_btf = self.kernel_btf;
        host
    }
}

/// Host facts converted once (`_core.HostSpec(dict)`): the hot paths take one
/// instead of the dict, so the dict's keys are not looked up per object. It
/// keeps the dict too, for the `Loader`s made with it (`Loader._host`).
#[pyclass(module = "bpfgen_fast._core", name = "HostSpec", frozen)]
pub(super) struct PyHostSpec {
    pub(super) host: Host,
    pub(super) opts: crate::generate::GenOptions,
    pub(super) args: Py<PyAny>,
}

#[pymethods]
impl PyHostSpec {
    #[new]
    pub(super) fn new(args: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (host, opts) = args.extract::<HostArgs>()?.into_host_and_options();
        Ok(PyHostSpec {
            host,
            opts,
            args: args.clone().unbind(),
        })
    }
}

/// Host facts as either form: parsed once, or a dict of `HostArgs`' keys.
#[derive(FromPyObject)]
pub(super) enum HostIn<'py> {
    Spec(Bound<'py, PyHostSpec>),
    Args(HostArgs),
}

impl HostIn<'_> {
    pub(super) fn into_host_and_options(self) -> (Host, crate::generate::GenOptions) {
        match self {
            HostIn::Spec(spec) => {
                let spec = spec.get();
                (spec.host.clone(), spec.opts)
            }
            HostIn::Args(args) => args.into_host_and_options(),
        }
    }
}

/// Host facts for a call that makes a `Loader`: a `HostSpec` is used in
/// place (nothing converted or copied), a dict is converted; either way the
/// dict is kept for the `Loader`'s `_host`.
pub(super) enum HostFor<'a> {
    Spec(&'a PyHostSpec),
    Owned(Host, crate::generate::GenOptions, Py<PyAny>),
}

impl<'a> HostFor<'a> {
    pub(super) fn extract(host: &'a Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(spec) = host.cast::<PyHostSpec>() {
            return Ok(HostFor::Spec(spec.get()));
        }
        let (h, opts) = host.extract::<HostArgs>()?.into_host_and_options();
        Ok(HostFor::Owned(h, opts, host.clone().unbind()))
    }

    pub(super) fn host(&self) -> (&Host, crate::generate::GenOptions) {
        match self {
            HostFor::Spec(s) => (&s.host, s.opts),
            HostFor::Owned(h, opts, _) => (h, *opts),
        }
    }

    pub(super) fn args(&self, py: Python<'_>) -> Py<PyAny> {
        match self {
            HostFor::Spec(s) => s.args.clone_ref(py),
            HostFor::Owned(_, _, args) => args.clone_ref(py),
        }
    }
}
