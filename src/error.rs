//! One error type for the whole core. Every error carries enough context to
//! point a user at the offending bytes: the object, the ELF section and the
//! offset inside it, where known. Conversion to Python exceptions lives in
//! `bindings/errors.rs`; nothing here knows about Python.

use std::fmt;

/// Which phase rejected the input; maps 1:1 onto the Python exception classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not an ELF file, not a BPF object, truncated or malformed ELF.
    Elf,
    /// Malformed `.BTF` / `.BTF.ext`, or BTF that does not describe the object.
    Btf,
    /// A relocation that cannot be applied.
    Relocation,
    /// Well-formed input that libbpf 1.5 refuses in gen mode.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub object: String,
    pub section: Option<String>,
    pub offset: Option<u64>,
    pub reason: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Error {
            kind,
            object: String::new(),
            section: None,
            offset: None,
            reason: reason.into(),
        }
    }

    pub fn elf(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Elf, reason)
    }

    pub fn btf(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Btf, reason)
    }

    pub fn reloc(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Relocation, reason)
    }

    pub fn unsupported(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, reason)
    }

    /// Attach the section name unless a more specific one is already set.
    pub fn in_section(mut self, section: impl Into<String>) -> Self {
        if self.section.is_none() {
            self.section = Some(section.into());
        }
        self
    }

    /// Attach an offset inside the section unless one is already set.
    pub fn at(mut self, offset: u64) -> Self {
        if self.offset.is_none() {
            self.offset = Some(offset);
        }
        self
    }

    pub fn for_object(mut self, object: &str) -> Self {
        if self.object.is_empty() {
            self.object = object.to_string();
        }
        self
    }
}

impl fmt::Display for Error {
    /// `OBJECT: SECTION+0xOFFSET: reason`, dropping the parts that are unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.object.is_empty() {
            write!(f, "{}: ", self.object)?;
        }
        match (&self.section, self.offset) {
            (Some(s), Some(o)) => write!(f, "{s}+{o:#x}: ")?,
            (Some(s), None) => write!(f, "{s}: ")?,
            (None, Some(o)) => write!(f, "+{o:#x}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Error {}
