//! ESEARCH (RFC 4731): the `RETURN` options of `SEARCH` and the `ESEARCH` response.

use alloc::vec::Vec;
use core::fmt::{self, Write};

use abnf_core::streaming::sp;
use imap_types::{
    core::Tag,
    extensions::esearch::{SearchReturnData, SearchReturnOption},
    response::Data,
};
use nom::{
    branch::alt,
    bytes::streaming::{tag, tag_no_case},
    combinator::{map, map_opt, opt, value},
    multi::{many0, separated_list0},
    sequence::{delimited, preceded, tuple},
};

#[cfg(feature = "ext_condstore_qresync")]
use crate::extensions::condstore_qresync::mod_sequence_value;
use crate::{
    core::{astring, number, nz_number},
    decode::IMAPResult,
    encode::{EncodeContext, EncodeIntoContext},
    sequence::sequence_set,
};

/// ```abnf
/// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
/// ```
pub(crate) fn search_return_opts(input: &[u8]) -> IMAPResult<&[u8], Vec<SearchReturnOption>> {
    delimited(
        tag_no_case(b" RETURN ("),
        separated_list0(sp, search_return_opt),
        tag(b")"),
    )(input)
}

/// ```abnf
/// search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" /
///                     search-ret-opt-ext ; RFC 4731
/// search-return-opt =/ "SAVE"            ; RFC 5182
/// ```
///
/// Note: `search-ret-opt-ext` is not supported.
pub(crate) fn search_return_opt(input: &[u8]) -> IMAPResult<&[u8], SearchReturnOption> {
    alt((
        value(SearchReturnOption::Min, tag_no_case(b"MIN")),
        value(SearchReturnOption::Max, tag_no_case(b"MAX")),
        value(SearchReturnOption::All, tag_no_case(b"ALL")),
        value(SearchReturnOption::Count, tag_no_case(b"COUNT")),
        value(SearchReturnOption::Save, tag_no_case(b"SAVE")),
    ))(input)
}

/// ```abnf
/// esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
/// ```
pub(crate) fn esearch_response(input: &[u8]) -> IMAPResult<&[u8], Data> {
    let mut parser = tuple((
        tag_no_case(b"ESEARCH"),
        opt(search_correlator),
        map(opt(tag_no_case(b" UID")), |uid| uid.is_some()),
        many0(preceded(sp, search_return_data)),
    ));

    let (remaining, (_, tag, uid, items)) = parser(input)?;

    Ok((remaining, Data::ESearch { tag, uid, items }))
}

/// ```abnf
/// search-correlator = SP "(" "TAG" SP tag-string ")"
///
/// tag-string = string  ; RFC 4731
/// tag-string = astring ; RFC 9051
/// ```
///
/// Note: The string must hold a valid tag.
pub(crate) fn search_correlator(input: &[u8]) -> IMAPResult<&[u8], Tag> {
    delimited(
        tag_no_case(b" (TAG "),
        map_opt(astring, |tag_string| {
            Tag::try_from(tag_string.as_ref().to_vec()).ok()
        }),
        tag(b")"),
    )(input)
}

/// ```abnf
/// search-return-data = "MIN" SP nz-number /
///                      "MAX" SP nz-number /
///                      "ALL" SP sequence-set /
///                      "COUNT" SP number /
///                      search-ret-data-ext              ; RFC 4731
/// search-return-data =/ "MODSEQ" SP mod-sequence-value ; RFC 7162
/// ```
///
/// Note: `search-ret-data-ext` is not supported.
pub(crate) fn search_return_data(input: &[u8]) -> IMAPResult<&[u8], SearchReturnData> {
    alt((
        map(
            preceded(tag_no_case(b"MIN "), nz_number),
            SearchReturnData::Min,
        ),
        map(
            preceded(tag_no_case(b"MAX "), nz_number),
            SearchReturnData::Max,
        ),
        map(
            preceded(tag_no_case(b"ALL "), sequence_set),
            SearchReturnData::All,
        ),
        map(
            preceded(tag_no_case(b"COUNT "), number),
            SearchReturnData::Count,
        ),
        #[cfg(feature = "ext_condstore_qresync")]
        map(
            preceded(tag_no_case(b"MODSEQ "), mod_sequence_value),
            SearchReturnData::ModSeq,
        ),
    ))(input)
}

impl EncodeIntoContext for SearchReturnOption {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        ctx.write_all(match self {
            Self::Min => b"MIN",
            Self::Max => b"MAX",
            Self::All => b"ALL",
            Self::Count => b"COUNT",
            Self::Save => b"SAVE",
        })
    }
}

impl EncodeIntoContext for SearchReturnData {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            Self::Min(min) => write!(ctx, "MIN {min}"),
            Self::Max(max) => write!(ctx, "MAX {max}"),
            Self::All(set) => {
                ctx.write_all(b"ALL ")?;
                set.encode_ctx(ctx)
            }
            Self::Count(count) => write!(ctx, "COUNT {count}"),
            #[cfg(feature = "ext_condstore_qresync")]
            Self::ModSeq(modseq) => write!(ctx, "MODSEQ {modseq}"),
        }
    }
}

/// Encodes the `ESEARCH` response after `* `.
pub(crate) fn encode_esearch(
    tag: Option<&Tag>,
    uid: bool,
    items: &[SearchReturnData],
    ctx: &mut EncodeContext,
) -> fmt::Result {
    ctx.write_all(b"ESEARCH")?;

    if let Some(tag) = tag {
        // A tag holds no quoted-specials, so it is a valid quoted string as it is.
        write!(ctx, " (TAG \"{}\")", tag.as_ref())?;
    }

    if uid {
        ctx.write_all(b" UID")?;
    }

    for item in items {
        ctx.write_all(b" ")?;
        item.encode_ctx(ctx)?;
    }

    Ok(())
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use core::num::NonZeroU32;
    #[cfg(feature = "ext_condstore_qresync")]
    use core::num::NonZeroU64;

    use imap_types::{
        command::{Command, CommandBody},
        core::{Charset, Tag, Vec1},
        extensions::esearch::{SearchReturnData, SearchReturnOption},
        response::{Data, Response},
        search::SearchKey,
        sequence::SequenceSet,
    };

    use crate::{
        CommandCodec, ResponseCodec,
        decode::Decoder,
        testing::{kat_inverse_command, kat_inverse_response, known_answer_test_encode},
    };

    fn nz(number: u32) -> NonZeroU32 {
        NonZeroU32::new(number).unwrap()
    }

    #[test]
    fn test_kat_inverse_command_search_return() {
        use SearchReturnOption::*;

        kat_inverse_command(&[
            (
                b"A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM Smith\r\n"
                    .as_ref(),
                b"".as_ref(),
                Command::new(
                    "A282",
                    CommandBody::Search {
                        charset: None,
                        criteria: Vec1::try_from(vec![
                            SearchKey::Flagged,
                            SearchKey::Since(
                                imap_types::datetime::NaiveDate::try_from(
                                    chrono::NaiveDate::from_ymd_opt(1994, 2, 1).unwrap(),
                                )
                                .unwrap(),
                            ),
                            SearchKey::Not(alloc::boxed::Box::new(SearchKey::From(
                                "Smith".try_into().unwrap(),
                            ))),
                        ])
                        .unwrap(),
                        uid: false,
                        return_options: Some(vec![Min, Count]),
                    },
                )
                .unwrap(),
            ),
            (
                b"A UID SEARCH RETURN () CHARSET UTF-8 ALL\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Search {
                        charset: Some(Charset::try_from("UTF-8").unwrap()),
                        criteria: Vec1::from(SearchKey::All),
                        uid: true,
                        return_options: Some(vec![]),
                    },
                )
                .unwrap(),
            ),
            (
                b"A search return (min max all count save) 1:*\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Search {
                        charset: None,
                        criteria: Vec1::from(SearchKey::SequenceSet(
                            SequenceSet::try_from("1:*").unwrap(),
                        )),
                        uid: false,
                        return_options: Some(vec![Min, Max, All, Count, Save]),
                    },
                )
                .unwrap(),
            ),
            // Without RETURN, there are no return options (and the answer is SEARCH).
            (
                b"A SEARCH ALL\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Search {
                        charset: None,
                        criteria: Vec1::from(SearchKey::All),
                        uid: false,
                        return_options: None,
                    },
                )
                .unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_search_return_invalid() {
        for command in [
            b"A SEARCH RETURN (BOGUS) ALL\r\n".as_ref(),
            b"A SEARCH RETURN ALL\r\n",
            b"A SEARCH RETURN (MIN)\r\n",
            b"A SEARCH CHARSET UTF-8 RETURN (MIN) ALL\r\n",
        ] {
            assert!(
                CommandCodec::default().decode(command).is_err(),
                "{}",
                core::str::from_utf8(command).unwrap()
            );
        }
    }

    #[test]
    fn test_kat_inverse_response_esearch() {
        kat_inverse_response(&[
            (
                b"* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n".as_ref(),
                b"".as_ref(),
                Response::Data(Data::ESearch {
                    tag: Some(Tag::try_from("A282").unwrap()),
                    uid: false,
                    items: vec![SearchReturnData::Min(nz(2)), SearchReturnData::Count(3)],
                }),
            ),
            (
                b"* ESEARCH (TAG \"a1\") UID MIN 2 MAX 9 COUNT 5 ALL 2:4,9\r\n",
                b"",
                Response::Data(Data::ESearch {
                    tag: Some(Tag::try_from("a1").unwrap()),
                    uid: true,
                    items: vec![
                        SearchReturnData::Min(nz(2)),
                        SearchReturnData::Max(nz(9)),
                        SearchReturnData::Count(5),
                        SearchReturnData::All(SequenceSet::try_from("2:4,9").unwrap()),
                    ],
                }),
            ),
            // No match: only the correlator (RFC 4731, section 3.1).
            (
                b"* ESEARCH (TAG \"t\") UID\r\n",
                b"",
                Response::Data(Data::ESearch {
                    tag: Some(Tag::try_from("t").unwrap()),
                    uid: true,
                    items: vec![],
                }),
            ),
            (
                b"* ESEARCH\r\n",
                b"",
                Response::Data(Data::ESearch {
                    tag: None,
                    uid: false,
                    items: vec![],
                }),
            ),
            // RFC 9051 allows the tag as an atom.
            (
                b"* ESEARCH (TAG A1) COUNT 0\r\n",
                b"",
                Response::Data(Data::ESearch {
                    tag: Some(Tag::try_from("A1").unwrap()),
                    uid: false,
                    items: vec![SearchReturnData::Count(0)],
                }),
            ),
            #[cfg(feature = "ext_condstore_qresync")]
            (
                b"* ESEARCH (TAG \"a\") UID ALL 1:3 MODSEQ 917162500\r\n",
                b"",
                Response::Data(Data::ESearch {
                    tag: Some(Tag::try_from("a").unwrap()),
                    uid: true,
                    items: vec![
                        SearchReturnData::All(SequenceSet::try_from("1:3").unwrap()),
                        SearchReturnData::ModSeq(NonZeroU64::new(917162500).unwrap()),
                    ],
                }),
            ),
        ]);
    }

    #[test]
    fn test_esearch_encoding() {
        known_answer_test_encode((
            Response::Data(Data::ESearch {
                tag: Some(Tag::try_from("a1").unwrap()),
                uid: true,
                items: vec![
                    SearchReturnData::Min(nz(2)),
                    SearchReturnData::Max(nz(9)),
                    SearchReturnData::Count(5),
                    SearchReturnData::All(SequenceSet::try_from("2:4,9").unwrap()),
                ],
            }),
            b"* ESEARCH (TAG \"a1\") UID MIN 2 MAX 9 COUNT 5 ALL 2:4,9\r\n".as_ref(),
        ));
    }

    #[test]
    fn test_esearch_invalid() {
        for response in [
            // The tag string must hold a tag.
            b"* ESEARCH (TAG \"a+b\")\r\n".as_ref(),
            b"* ESEARCH (TAG \"\")\r\n",
            b"* ESEARCH MIN 0\r\n",
            b"* ESEARCH COUNT x\r\n",
        ] {
            assert!(
                ResponseCodec::default().decode(response).is_err(),
                "{}",
                core::str::from_utf8(response).unwrap()
            );
        }
    }
}
