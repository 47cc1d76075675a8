//! LIST-EXTENDED (RFC 5258) with LIST-STATUS (RFC 5819) and the SPECIAL-USE
//! options (RFC 6154): the extended `LIST` command and the extended data items
//! of `LIST` responses.

use alloc::{boxed::Box, vec::Vec};
use core::fmt::{self, Write};

use abnf_core::streaming::{dquote, sp};
use imap_types::{
    command::CommandBody,
    core::{Vec1, Vec2},
    extensions::list_extended::{
        ListReturnOption, ListSelectBaseOpt, ListSelectBaseOptExtension,
        ListSelectBaseOptExtensionTag, ListSelectOption, MboxListExtendedItem,
        MboxListExtendedItemTag, TaggedExtComp, TaggedExtSimple, TaggedExtVal,
    },
    mailbox::ListMailbox,
};
use nom::{
    branch::alt,
    bytes::streaming::{tag, tag_no_case},
    combinator::{map, map_opt, opt, value, verify},
    multi::{separated_list0, separated_list1},
    sequence::{delimited, preceded, tuple},
};

use crate::{
    core::{astring, atom, number},
    decode::{IMAPErrorKind, IMAPParseError, IMAPResult},
    encode::{EncodeContext, EncodeIntoContext, utils::join_serializable},
    mailbox::{list_mailbox, mailbox},
    sequence::sequence_set,
    status::status_att,
};

/// How deep `tagged-ext-comp` values may nest.
const TAGGED_EXT_COMP_RECURSIONS: usize = 8;

/// ```abnf
/// list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
/// ```
///
/// A `LIST` without selection options, parenthesized patterns and return
/// options is a plain [`CommandBody::List`].
pub(crate) fn list(input: &[u8]) -> IMAPResult<&[u8], CommandBody> {
    let mut parser = tuple((
        tag_no_case(b"LIST"),
        opt(preceded(sp, list_select_opts)),
        sp,
        mailbox,
        sp,
        mbox_or_pat,
        opt(preceded(sp, list_return_opts)),
    ));

    let (remaining, (_, selection_options, _, reference, _, (patterns, grouped), return_options)) =
        parser(input)?;

    if selection_options.is_none() && !grouped && return_options.is_none() {
        // `mbox-or-pat` gave exactly one pattern.
        let mailbox_wildcard = patterns.into_inner().remove(0);

        return Ok((
            remaining,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            },
        ));
    }

    Ok((
        remaining,
        CommandBody::ListExtended {
            selection_options: selection_options.unwrap_or_default(),
            reference,
            patterns,
            return_options: return_options.unwrap_or_default(),
        },
    ))
}

/// ```abnf
/// list-select-opts = "(" [ (*(list-select-opt SP) list-select-base-opt *(SP list-select-opt)) /
///                          (list-select-independent-opt *(SP list-select-independent-opt)) ] ")"
/// ```
///
/// Note: Any order is accepted; a `list-select-mod-opt` needs a `list-select-base-opt`.
pub(crate) fn list_select_opts(input: &[u8]) -> IMAPResult<&[u8], Vec<ListSelectOption>> {
    verify(
        delimited(tag(b"("), separated_list0(sp, list_select_opt), tag(b")")),
        |options: &Vec<ListSelectOption>| ListSelectOption::valid_list(options),
    )(input)
}

/// ```abnf
/// list-select-opt = list-select-base-opt / list-select-independent-opt / list-select-mod-opt
/// ```
pub(crate) fn list_select_opt(input: &[u8]) -> IMAPResult<&[u8], ListSelectOption> {
    alt((
        value(ListSelectOption::Subscribed, tag_no_case(b"SUBSCRIBED")),
        value(ListSelectOption::Remote, tag_no_case(b"REMOTE")),
        value(
            ListSelectOption::RecursiveMatch,
            tag_no_case(b"RECURSIVEMATCH"),
        ),
        value(ListSelectOption::SpecialUse, tag_no_case(b"SPECIAL-USE")),
    ))(input)
}

/// ```abnf
/// mbox-or-pat = list-mailbox / patterns
/// patterns    = "(" list-mailbox *(SP list-mailbox) ")"
/// ```
///
/// Returns the patterns and whether they were given as `patterns`.
pub(crate) fn mbox_or_pat(input: &[u8]) -> IMAPResult<&[u8], (Vec1<ListMailbox>, bool)> {
    alt((
        map(
            delimited(tag(b"("), separated_list1(sp, list_mailbox), tag(b")")),
            |patterns| (Vec1::unvalidated(patterns), true),
        ),
        map(list_mailbox, |pattern| (Vec1::from(pattern), false)),
    ))(input)
}

/// ```abnf
/// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
/// ```
pub(crate) fn list_return_opts(input: &[u8]) -> IMAPResult<&[u8], Vec<ListReturnOption>> {
    delimited(
        tag_no_case(b"RETURN ("),
        separated_list0(sp, return_option),
        tag(b")"),
    )(input)
}

/// ```abnf
/// return-option = "SUBSCRIBED" / "CHILDREN" / status-option / option-extension
/// return-option =/ "SPECIAL-USE"                                  ; RFC 6154
/// status-option = "STATUS" SP "(" status-att *(SP status-att) ")" ; RFC 5819
/// ```
pub(crate) fn return_option(input: &[u8]) -> IMAPResult<&[u8], ListReturnOption> {
    alt((
        value(ListReturnOption::Subscribed, tag_no_case(b"SUBSCRIBED")),
        value(ListReturnOption::Children, tag_no_case(b"CHILDREN")),
        value(ListReturnOption::SpecialUse, tag_no_case(b"SPECIAL-USE")),
        map(
            delimited(
                tag_no_case(b"STATUS ("),
                separated_list1(sp, status_att),
                tag(b")"),
            ),
            |items| ListReturnOption::Status(Vec1::unvalidated(items)),
        ),
    ))(input)
}

/// ```abnf
/// mbox-list-extended = "(" [mbox-list-extended-item *(SP mbox-list-extended-item)] ")"
/// ```
pub(crate) fn mbox_list_extended(input: &[u8]) -> IMAPResult<&[u8], Vec<MboxListExtendedItem>> {
    delimited(
        tag(b"("),
        separated_list0(sp, mbox_list_extended_item),
        tag(b")"),
    )(input)
}

/// ```abnf
/// mbox-list-extended-item     = mbox-list-extended-item-tag SP tagged-ext-val
/// mbox-list-extended-item-tag = astring
///
/// childinfo-extended-item     = "CHILDINFO" SP "(" list-select-base-opt-quoted
///                               *(SP list-select-base-opt-quoted) ")"
/// ```
///
/// Note: The tag is an astring, so `"CHILDINFO"` (as in the examples of
/// RFC 5258) is `CHILDINFO` too.
pub(crate) fn mbox_list_extended_item(input: &[u8]) -> IMAPResult<&[u8], MboxListExtendedItem> {
    let (remaining, item_tag) = astring(input)?;

    if item_tag.as_ref().eq_ignore_ascii_case(b"CHILDINFO") {
        return map(
            delimited(
                tag(b" ("),
                separated_list1(sp, list_select_base_opt_quoted),
                tag(b")"),
            ),
            |options| MboxListExtendedItem::ChildInfo(Vec1::unvalidated(options)),
        )(remaining);
    }

    map(
        preceded(sp, tagged_ext_val(TAGGED_EXT_COMP_RECURSIONS)),
        move |value| MboxListExtendedItem::Other {
            // The tag is not CHILDINFO (checked above).
            tag: MboxListExtendedItemTag::unvalidated(item_tag.clone()),
            value,
        },
    )(remaining)
}

/// ```abnf
/// list-select-base-opt-quoted = DQUOTE list-select-base-opt DQUOTE
/// list-select-base-opt        = "SUBSCRIBED" / option-extension
/// option-extension            = (option-standard-tag / option-vendor-tag) [SP option-value]
/// option-value                = "(" option-val-comp ")"
/// ```
///
/// Note: `option-val-comp` is parsed as `tagged-ext-comp` (the same grammar).
pub(crate) fn list_select_base_opt_quoted(input: &[u8]) -> IMAPResult<&[u8], ListSelectBaseOpt> {
    delimited(
        dquote,
        map_opt(
            tuple((
                atom,
                opt(preceded(
                    sp,
                    delimited(
                        tag(b"("),
                        tagged_ext_comp(TAGGED_EXT_COMP_RECURSIONS),
                        tag(b")"),
                    ),
                )),
            )),
            |(option, value)| {
                if option.as_ref().eq_ignore_ascii_case("SUBSCRIBED") {
                    // `SUBSCRIBED` takes no value.
                    return value.is_none().then_some(ListSelectBaseOpt::Subscribed);
                }

                let tag = ListSelectBaseOptExtensionTag::try_from(option).ok()?;

                Some(ListSelectBaseOpt::Extension(ListSelectBaseOptExtension {
                    tag,
                    value,
                }))
            },
        ),
        dquote,
    )(input)
}

/// ```abnf
/// tagged-ext-val    = tagged-ext-simple / "(" [tagged-ext-comp] ")"
/// tagged-ext-simple = sequence-set / number
/// ```
pub(crate) fn tagged_ext_val(
    remaining_recursions: usize,
) -> impl Fn(&[u8]) -> IMAPResult<&[u8], TaggedExtVal> {
    move |input: &[u8]| {
        alt((
            map(
                delimited(
                    tag(b"("),
                    opt(tagged_ext_comp(remaining_recursions)),
                    tag(b")"),
                ),
                TaggedExtVal::Comp,
            ),
            map(sequence_set, |set| {
                TaggedExtVal::Simple(TaggedExtSimple::SequenceSet(set))
            }),
            map(number, |number| {
                TaggedExtVal::Simple(TaggedExtSimple::Number(number))
            }),
        ))(input)
    }
}

/// ```abnf
/// tagged-ext-comp = astring /
///                   tagged-ext-comp *(SP tagged-ext-comp) /
///                   "(" tagged-ext-comp ")"
/// ```
///
/// This parser is recursively defined. Thus, in order to not overflow the stack,
/// it is needed to limit how may recursions are allowed.
pub(crate) fn tagged_ext_comp(
    remaining_recursions: usize,
) -> impl Fn(&[u8]) -> IMAPResult<&[u8], TaggedExtComp> {
    move |input: &[u8]| tagged_ext_comp_limited(input, remaining_recursions)
}

fn tagged_ext_comp_limited(
    input: &[u8],
    remaining_recursions: usize,
) -> IMAPResult<&[u8], TaggedExtComp> {
    if remaining_recursions == 0 {
        return Err(nom::Err::Failure(IMAPParseError {
            input,
            kind: IMAPErrorKind::RecursionLimitExceeded,
        }));
    }

    let inner = |input| tagged_ext_comp_limited(input, remaining_recursions - 1);
    let component = alt((
        map(delimited(tag(b"("), inner, tag(b")")), |comp| {
            TaggedExtComp::Group(Box::new(comp))
        }),
        map(astring, TaggedExtComp::Single),
    ));

    map(separated_list1(sp, component), |mut components| {
        if components.len() == 1 {
            components.remove(0)
        } else {
            TaggedExtComp::Multi(Vec2::unvalidated(components))
        }
    })(input)
}

impl EncodeIntoContext for ListSelectOption {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        ctx.write_all(match self {
            Self::Subscribed => b"SUBSCRIBED",
            Self::Remote => b"REMOTE",
            Self::RecursiveMatch => b"RECURSIVEMATCH",
            Self::SpecialUse => b"SPECIAL-USE",
        })
    }
}

impl EncodeIntoContext for ListReturnOption {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            Self::Subscribed => ctx.write_all(b"SUBSCRIBED"),
            Self::Children => ctx.write_all(b"CHILDREN"),
            Self::SpecialUse => ctx.write_all(b"SPECIAL-USE"),
            Self::Status(items) => {
                ctx.write_all(b"STATUS (")?;
                join_serializable(items.as_ref(), b" ", ctx)?;
                ctx.write_all(b")")
            }
        }
    }
}

/// Encodes an extended `LIST` command: always with its selection options, so
/// that it stays extended.
pub(crate) fn encode_list_extended(
    selection_options: &[ListSelectOption],
    reference: &impl EncodeIntoContext,
    patterns: &Vec1<ListMailbox>,
    return_options: &[ListReturnOption],
    ctx: &mut EncodeContext,
) -> fmt::Result {
    ctx.write_all(b"LIST (")?;
    join_serializable(selection_options, b" ", ctx)?;
    ctx.write_all(b") ")?;
    reference.encode_ctx(ctx)?;
    ctx.write_all(b" ")?;

    match patterns.as_ref() {
        [pattern] => pattern.encode_ctx(ctx)?,
        patterns => {
            ctx.write_all(b"(")?;
            join_serializable(patterns, b" ", ctx)?;
            ctx.write_all(b")")?;
        }
    }

    if !return_options.is_empty() {
        ctx.write_all(b" RETURN (")?;
        join_serializable(return_options, b" ", ctx)?;
        ctx.write_all(b")")?;
    }

    Ok(())
}

impl EncodeIntoContext for MboxListExtendedItem<'_> {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            // Quoted as in the examples of RFC 5258 (the tag is an astring).
            Self::ChildInfo(options) => {
                ctx.write_all(b"\"CHILDINFO\" (")?;
                join_serializable(options.as_ref(), b" ", ctx)?;
                ctx.write_all(b")")
            }
            Self::Other { tag, value } => {
                tag.inner().encode_ctx(ctx)?;
                ctx.write_all(b" ")?;
                value.encode_ctx(ctx)
            }
        }
    }
}

/// Encodes `list-select-base-opt-quoted`.
impl EncodeIntoContext for ListSelectBaseOpt<'_> {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        ctx.write_all(b"\"")?;
        match self {
            Self::Subscribed => ctx.write_all(b"SUBSCRIBED")?,
            Self::Extension(ListSelectBaseOptExtension { tag, value }) => {
                tag.inner().encode_ctx(ctx)?;
                if let Some(value) = value {
                    ctx.write_all(b" (")?;
                    value.encode_ctx(ctx)?;
                    ctx.write_all(b")")?;
                }
            }
        }
        ctx.write_all(b"\"")
    }
}

impl EncodeIntoContext for TaggedExtVal<'_> {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            Self::Simple(TaggedExtSimple::SequenceSet(set)) => set.encode_ctx(ctx),
            Self::Simple(TaggedExtSimple::Number(number)) => write!(ctx, "{number}"),
            Self::Comp(comp) => {
                ctx.write_all(b"(")?;
                if let Some(comp) = comp {
                    comp.encode_ctx(ctx)?;
                }
                ctx.write_all(b")")
            }
        }
    }
}

impl EncodeIntoContext for TaggedExtComp<'_> {
    fn encode_ctx(&self, ctx: &mut EncodeContext) -> fmt::Result {
        match self {
            Self::Single(astring) => astring.encode_ctx(ctx),
            Self::Multi(comps) => join_serializable(comps.as_ref(), b" ", ctx),
            Self::Group(comp) => {
                ctx.write_all(b"(")?;
                comp.encode_ctx(ctx)?;
                ctx.write_all(b")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::{boxed::Box, vec, vec::Vec};

    use imap_types::{
        command::{Command, CommandBody},
        core::{AString, Atom, QuotedChar, Vec1, Vec2},
        extensions::list_extended::{
            ListReturnOption, ListSelectBaseOpt, ListSelectBaseOptExtension,
            ListSelectBaseOptExtensionTag, ListSelectOption, MboxListExtendedItem,
            MboxListExtendedItemTag, TaggedExtComp, TaggedExtSimple, TaggedExtVal,
        },
        flag::FlagNameAttribute,
        mailbox::{ListMailbox, Mailbox},
        response::{Data, Response},
        sequence::SequenceSet,
        status::StatusDataItemName,
    };

    use crate::{
        CommandCodec, ResponseCodec,
        decode::Decoder,
        testing::{kat_inverse_command, kat_inverse_response, known_answer_test_encode},
    };

    fn pattern(pattern: &str) -> ListMailbox<'_> {
        ListMailbox::try_from(pattern).unwrap()
    }

    fn extended<'a>(
        selection_options: Vec<ListSelectOption>,
        reference: &'a str,
        patterns: Vec<&'a str>,
        return_options: Vec<ListReturnOption>,
    ) -> Command<'a> {
        Command::new(
            "A",
            CommandBody::ListExtended {
                selection_options,
                reference: Mailbox::try_from(reference).unwrap(),
                patterns: Vec1::try_from(patterns.into_iter().map(pattern).collect::<Vec<_>>())
                    .unwrap(),
                return_options,
            },
        )
        .unwrap()
    }

    #[test]
    fn test_kat_inverse_command_list_extended() {
        use ListReturnOption as R;
        use ListSelectOption as S;

        kat_inverse_command(&[
            (
                b"A LIST (SUBSCRIBED) \"\" *\r\n".as_ref(),
                b"".as_ref(),
                extended(vec![S::Subscribed], "", vec!["*"], vec![]),
            ),
            (
                b"A list (subscribed recursivematch) \"\" % return (children)\r\n",
                b"",
                extended(
                    vec![S::Subscribed, S::RecursiveMatch],
                    "",
                    vec!["%"],
                    vec![R::Children],
                ),
            ),
            // Any order; RECURSIVEMATCH before the base option.
            (
                b"A LIST (REMOTE RECURSIVEMATCH SUBSCRIBED) Foo/ %\r\n",
                b"",
                extended(
                    vec![S::Remote, S::RecursiveMatch, S::Subscribed],
                    "Foo/",
                    vec!["%"],
                    vec![],
                ),
            ),
            (
                b"A LIST (SPECIAL-USE REMOTE) \"\" * RETURN (SPECIAL-USE)\r\n",
                b"",
                extended(
                    vec![S::SpecialUse, S::Remote],
                    "",
                    vec!["*"],
                    vec![R::SpecialUse],
                ),
            ),
            // Extended by the parenthesized patterns alone.
            (
                b"A LIST \"\" (INBOX \"My Folder\" Sent/%)\r\n",
                b"",
                extended(vec![], "", vec!["INBOX", "My Folder", "Sent/%"], vec![]),
            ),
            // One pattern in parentheses is extended too (RFC 5258, section 3).
            (
                b"A LIST \"\" (\"\")\r\n",
                b"",
                extended(vec![], "", vec![""], vec![]),
            ),
            // Extended by empty selection options or an empty RETURN alone.
            (
                b"A LIST () \"\" \"\"\r\n",
                b"",
                extended(vec![], "", vec![""], vec![]),
            ),
            (
                b"A LIST \"\" % RETURN ()\r\n",
                b"",
                extended(vec![], "", vec!["%"], vec![]),
            ),
            (
                b"A LIST () \"\" % RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES UNSEEN SIZE DELETED))\r\n",
                b"",
                extended(
                    vec![],
                    "",
                    vec!["%"],
                    vec![
                        R::Subscribed,
                        R::Children,
                        R::Status(
                            Vec1::try_from(vec![
                                StatusDataItemName::Messages,
                                StatusDataItemName::Unseen,
                                StatusDataItemName::Size,
                                StatusDataItemName::Deleted,
                            ])
                            .unwrap(),
                        ),
                    ],
                ),
            ),
            // A plain LIST stays a plain LIST.
            (
                b"A LIST \"\" *\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::List {
                        reference: Mailbox::try_from("").unwrap(),
                        mailbox_wildcard: pattern("*"),
                    },
                )
                .unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_list_extended_is_always_encoded_extended() {
        known_answer_test_encode((
            extended(vec![], "", vec!["*"], vec![]),
            b"A LIST () \"\" *\r\n".as_ref(),
        ));
        known_answer_test_encode((
            extended(
                vec![ListSelectOption::Subscribed],
                "",
                vec!["a", "b"],
                vec![ListReturnOption::Status(Vec1::from(
                    StatusDataItemName::UidNext,
                ))],
            ),
            b"A LIST (SUBSCRIBED) \"\" (a b) RETURN (STATUS (UIDNEXT))\r\n".as_ref(),
        ));
    }

    #[test]
    fn test_list_extended_invalid() {
        for command in [
            // RFC 5258, section 3.1: RECURSIVEMATCH alone or only with REMOTE is BAD.
            b"A LIST (RECURSIVEMATCH) \"\" *\r\n".as_ref(),
            b"A LIST (REMOTE RECURSIVEMATCH) \"\" *\r\n",
            // RFC 6154: SPECIAL-USE is independent, not a base option.
            b"A LIST (SPECIAL-USE RECURSIVEMATCH) \"\" *\r\n",
            // Unknown options.
            b"A LIST (BOGUS) \"\" *\r\n",
            b"A LIST \"\" * RETURN (BOGUS)\r\n",
            // Empty pattern list, empty STATUS, RETURN without a list.
            b"A LIST \"\" ()\r\n",
            b"A LIST \"\" * RETURN (STATUS ())\r\n",
            b"A LIST \"\" * RETURN CHILDREN\r\n",
            b"A LIST (SUBSCRIBED)\"\" *\r\n",
        ] {
            assert!(
                CommandCodec::default().decode(command).is_err(),
                "{}",
                core::str::from_utf8(command).unwrap()
            );
        }
    }

    #[test]
    fn test_kat_inverse_response_list_extended_items() {
        let delimiter = Some(QuotedChar::try_from('/').unwrap());
        let atom = |name: &'static str| Atom::try_from(name).unwrap();
        let astring = |value: &'static str| AString::try_from(value).unwrap();

        kat_inverse_response(&[
            (
                b"* LIST (\\Subscribed \\NonExistent) \"/\" Fruit/Peach\r\n".as_ref(),
                b"".as_ref(),
                Response::Data(Data::List {
                    items: vec![
                        FlagNameAttribute::from(atom("Subscribed")),
                        FlagNameAttribute::from(atom("NonExistent")),
                    ],
                    delimiter,
                    mailbox: Mailbox::try_from("Fruit/Peach").unwrap(),
                    extended_items: vec![],
                }),
            ),
            // As in the examples of RFC 5258, section 5.
            (
                b"* LIST () \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
                b"",
                Response::Data(Data::List {
                    items: vec![],
                    delimiter,
                    mailbox: Mailbox::try_from("Foo").unwrap(),
                    extended_items: vec![MboxListExtendedItem::ChildInfo(Vec1::from(
                        ListSelectBaseOpt::Subscribed,
                    ))],
                }),
            ),
            (
                b"* LIST (\\HasChildren) \"/\" Foo (childinfo (\"SUBSCRIBED\" \"X-FOO\" \"X-BAR (1 (2))\"))\r\n",
                b"",
                Response::Data(Data::List {
                    items: vec![FlagNameAttribute::from(atom("HasChildren"))],
                    delimiter,
                    mailbox: Mailbox::try_from("Foo").unwrap(),
                    extended_items: vec![MboxListExtendedItem::ChildInfo(
                        Vec1::try_from(vec![
                            ListSelectBaseOpt::Subscribed,
                            ListSelectBaseOpt::Extension(ListSelectBaseOptExtension {
                                tag: ListSelectBaseOptExtensionTag::try_from(atom("X-FOO"))
                                    .unwrap(),
                                value: None,
                            }),
                            ListSelectBaseOpt::Extension(ListSelectBaseOptExtension {
                                tag: ListSelectBaseOptExtensionTag::try_from(atom("X-BAR"))
                                    .unwrap(),
                                value: Some(TaggedExtComp::Multi(Vec2::from((
                                    TaggedExtComp::Single(astring("1")),
                                    TaggedExtComp::Group(Box::new(TaggedExtComp::Single(
                                        astring("2"),
                                    ))),
                                )))),
                            }),
                        ])
                        .unwrap(),
                    )],
                }),
            ),
            (
                b"* LIST () \"/\" Foo (OLDNAME (Bar) X-NUM 0 X-SET 1:3,5 X-EMPTY ())\r\n",
                b"",
                Response::Data(Data::List {
                    items: vec![],
                    delimiter,
                    mailbox: Mailbox::try_from("Foo").unwrap(),
                    extended_items: vec![
                        MboxListExtendedItem::Other {
                            tag: MboxListExtendedItemTag::try_from(astring("OLDNAME")).unwrap(),
                            value: TaggedExtVal::Comp(Some(TaggedExtComp::Single(astring(
                                "Bar",
                            )))),
                        },
                        MboxListExtendedItem::Other {
                            tag: MboxListExtendedItemTag::try_from(astring("X-NUM")).unwrap(),
                            value: TaggedExtVal::Simple(TaggedExtSimple::Number(0)),
                        },
                        MboxListExtendedItem::Other {
                            tag: MboxListExtendedItemTag::try_from(astring("X-SET")).unwrap(),
                            value: TaggedExtVal::Simple(TaggedExtSimple::SequenceSet(
                                SequenceSet::try_from("1:3,5").unwrap(),
                            )),
                        },
                        MboxListExtendedItem::Other {
                            tag: MboxListExtendedItemTag::try_from(astring("X-EMPTY")).unwrap(),
                            value: TaggedExtVal::Comp(None),
                        },
                    ],
                }),
            ),
            // An empty list of extended items is the same as none.
            (
                b"* LIST () NIL INBOX ()\r\n",
                b"",
                Response::Data(Data::List {
                    items: vec![],
                    delimiter: None,
                    mailbox: Mailbox::Inbox,
                    extended_items: vec![],
                }),
            ),
        ]);
    }

    #[test]
    fn test_list_extended_items_encoding() {
        known_answer_test_encode((
            Response::Data(Data::List {
                items: vec![],
                delimiter: Some(QuotedChar::try_from('/').unwrap()),
                mailbox: Mailbox::try_from("Foo").unwrap(),
                extended_items: vec![MboxListExtendedItem::ChildInfo(Vec1::from(
                    ListSelectBaseOpt::Subscribed,
                ))],
            }),
            b"* LIST () \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n".as_ref(),
        ));
    }

    #[test]
    fn test_list_extended_items_recursion_limit() {
        let deep = [
            b"* LIST () \"/\" Foo (X-DEEP ".as_ref(),
            &[b'('; 20],
            b"a",
            &[b')'; 20],
            b")\r\n",
        ]
        .concat();

        assert!(ResponseCodec::default().decode(&deep).is_err());
    }
}
