//! A generated loader read back into what it will do: the one decoder of the
//! loader format. libbpf's gen_loader builds a loader from a small, fixed
//! set of instruction blocks (the prologue, the cleanup path every error
//! branch jumps to, one block per BTF_LOAD, MAP_CREATE, map update / freeze
//! / populate and PROG_LOAD, the epilogue handing fds to the skeleton), so
//! [`decode`] matches the instructions against those blocks and reads the
//! attrs from the data blob where the blocks point. Whatever does not fit is
//! a [`DecodeError`], which makes the decoder a structural check as well.
//!
//! - [`model`]: the steps, as `explain --json` writes them;
//! - [`decode`]: blobs to an [`Explanation`], in either byte order, signed
//!   or not, matched with a cursor over the instructions (`cursor.rs`);
//! - [`text`]: the `explain` listing;
//! - [`diagnose`]: which step a failed run stopped at, from the blob the
//!   run left behind.

mod cursor;
mod decode;
mod diagnose;
pub mod model;
mod text;

pub use decode::decode;
pub use diagnose::diagnose;
pub use model::*;
pub use text::render;

/// A loader that does not have gen_loader's shape, at instruction `insn`
/// where known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub reason: String,
    pub insn: Option<usize>,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.insn {
            Some(i) => write!(f, "loader: insn {i}: {}", self.reason),
            None => write!(f, "loader: {}", self.reason),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<crate::disasm::SlotError> for DecodeError {
    fn from(e: crate::disasm::SlotError) -> Self {
        DecodeError {
            reason: e.reason,
            insn: e.insn,
        }
    }
}

/// What [`decode`] needs besides the two blobs.
#[derive(Debug, Clone, Default)]
pub struct DecodeOptions<'a> {
    /// The skeleton's map and program names: the attrs hold only the first
    /// 15 characters.
    pub map_names: &'a [String],
    pub prog_names: &'a [String],
    /// The ctx size the skeleton allocates, when larger than the loader needs.
    pub ctx_size: Option<usize>,
    /// Add the instruction listing.
    pub with_disasm: bool,
    /// The target's byte order; `None` reads it off the first instruction.
    pub big_endian: Option<bool>,
}
