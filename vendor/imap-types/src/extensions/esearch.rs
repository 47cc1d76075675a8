//! IMAP4 Extension to SEARCH Command for Controlling What Kind of Information Is Returned
//! (ESEARCH, RFC 4731), as folded into IMAP4rev2 (RFC 9051).
//!
//! See [RFC 4731](https://www.rfc-editor.org/rfc/rfc4731).

use core::num::NonZeroU32;
#[cfg(feature = "ext_condstore_qresync")]
use core::num::NonZeroU64;

#[cfg(feature = "arbitrary")]
use arbitrary::Arbitrary;
use bounded_static_derive::ToStatic;
#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::sequence::SequenceSet;

/// What a `SEARCH` with a `RETURN` clause asks for.
///
/// ```abnf
/// search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" /
///                     search-ret-opt-ext        ; RFC 4731
/// search-return-opt =/ "SAVE"                   ; RFC 5182
/// ```
///
/// Note: `search-ret-opt-ext` is not supported: a server answers a return
/// option it doesn't know with BAD, which is what a failed parse leads to.
///
/// See [RFC 4731, section 3.1](https://www.rfc-editor.org/rfc/rfc4731#section-3.1).
#[cfg_attr(feature = "arbitrary", derive(Arbitrary))]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToStatic)]
pub enum SearchReturnOption {
    /// `MIN`: the lowest matching number.
    Min,
    /// `MAX`: the highest matching number.
    Max,
    /// `ALL`: all matching numbers, as a sequence set.
    All,
    /// `COUNT`: how many messages match.
    Count,
    /// `SAVE`: keep the result for later use as `$` (RFC 5182).
    Save,
}

/// One item of an `ESEARCH` response.
///
/// ```abnf
/// search-return-data = "MIN" SP nz-number /
///                      "MAX" SP nz-number /
///                      "ALL" SP sequence-set /
///                      "COUNT" SP number /
///                      search-ret-data-ext       ; RFC 4731
/// search-return-data =/ "MODSEQ" SP mod-sequence-value ; RFC 7162
/// ```
///
/// Note: `search-ret-data-ext` is not supported.
///
/// See [RFC 4731, section 3.1](https://www.rfc-editor.org/rfc/rfc4731#section-3.1).
#[cfg_attr(feature = "arbitrary", derive(Arbitrary))]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", content = "content"))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, ToStatic)]
pub enum SearchReturnData {
    /// `MIN`: the lowest matching number.
    Min(NonZeroU32),
    /// `MAX`: the highest matching number.
    Max(NonZeroU32),
    /// `ALL`: all matching numbers.
    All(SequenceSet),
    /// `COUNT`: how many messages match.
    Count(u32),
    /// `MODSEQ`: the highest MODSEQ of the matching messages (RFC 7162, section 3.1.5).
    #[cfg(feature = "ext_condstore_qresync")]
    ModSeq(NonZeroU64),
}
