use imap_types::{
    core::Vec1,
    sequence::{SeqOrUid, Sequence, SequenceSet},
};
use nom::{
    branch::alt,
    bytes::streaming::tag,
    combinator::{map, value},
    multi::separated_list1,
    sequence::tuple,
};

use crate::{core::nz_number, decode::IMAPResult};

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`
///
/// Note: See errata id: 261 TODO: Why the errata?
///
/// Set of seq-number values, regardless of order.
/// Servers MAY coalesce overlaps and/or execute the sequence in any order.
///
/// Example: a message sequence number set of
/// 2,4:7,9,12:* for a mailbox with 15 messages is
/// equivalent to 2,4,5,6,7,9,12,13,14,15
///
/// Example: a message sequence number set of *:4,5:7
/// for a mailbox with 10 messages is equivalent to
/// 10,9,8,7,6,5,4,5,6,7 and MAY be reordered and
/// overlap coalesced to be 4,5,6,7,8,9,10.
///
/// Simplified:
///
/// `sequence-set = (seq-number / seq-range) *("," (seq-number / seq-range))`
pub(crate) fn sequence_set(input: &[u8]) -> IMAPResult<&[u8], SequenceSet> {
    map(
        separated_list1(
            tag(b","),
            alt((
                // Ordering is important!
                map(seq_range, |(from, to)| Sequence::Range(from, to)),
                map(seq_number, Sequence::Single),
                value(Sequence::LastCommand, seq_last_command),
            )),
        ),
        |set| SequenceSet(Vec1::unvalidated(set)),
    )(input)
}

/// `seq-last-command = "$"` (RFC 5182 §2.1, RFC 9051 §9)
///
/// Refers to the result saved by the last `SEARCH RETURN (SAVE)`.
/// (`sequence-set =/ seq-last-command`)
pub(crate) fn seq_last_command(input: &[u8]) -> IMAPResult<&[u8], &[u8]> {
    tag(b"$")(input)
}

/// `seq-range = seq-number ":" seq-number`
///
/// Two seq-number values and all values between these two regardless of order.
///
/// Example: 2:4 and 4:2 are equivalent and indicate values 2, 3, and 4.
///
/// Example: a unique identifier sequence range of 3291:* includes the UID
///          of the last message in the mailbox, even if that value is less than 3291.
pub(crate) fn seq_range(input: &[u8]) -> IMAPResult<&[u8], (SeqOrUid, SeqOrUid)> {
    let mut parser = tuple((seq_number, tag(b":"), seq_number));

    let (remaining, (from, _, to)) = parser(input)?;

    Ok((remaining, (from, to)))
}

/// `seq-number = nz-number / "*"`
///
/// Message sequence number (COPY, FETCH, STORE commands) or unique
/// identifier (UID COPY, UID FETCH, UID STORE commands).
///
/// "*" represents the largest number in use.
/// In the case of message sequence numbers, it is the number of messages in a non-empty mailbox.
/// In the case of unique identifiers, it is the unique identifier of the last message in the mailbox or,
/// if the mailbox is empty, the mailbox's current UIDNEXT value.
///
/// The server should respond with a tagged BAD response to a command that uses a message
/// sequence number greater than the number of messages in the selected mailbox.
/// This includes "*" if the selected mailbox is empty.
pub(crate) fn seq_number(input: &[u8]) -> IMAPResult<&[u8], SeqOrUid> {
    alt((
        map(nz_number, SeqOrUid::Value),
        value(SeqOrUid::Asterisk, tag(b"*")),
    ))(input)
}

#[cfg(test)]
mod tests {
    use std::println;

    use std::vec;

    use imap_types::{
        command::{Command, CommandBody},
        extensions::esearch::SearchReturnOption,
        fetch::MessageDataItemName,
        search::SearchKey,
    };

    use super::*;
    use crate::{
        encode::{EncodeContext, EncodeIntoContext},
        testing::kat_inverse_command,
    };

    #[test]
    fn test_encode_of_some_sequence_sets() {
        let tests = [
            (
                Sequence::Single(SeqOrUid::Value(1.try_into().unwrap())),
                b"1".as_ref(),
            ),
            (Sequence::Single(SeqOrUid::Asterisk), b"*".as_ref()),
            (
                Sequence::Range(SeqOrUid::Value(1.try_into().unwrap()), SeqOrUid::Asterisk),
                b"1:*".as_ref(),
            ),
        ];

        for (test, expected) in tests {
            let mut ctx = EncodeContext::new();
            test.encode_ctx(&mut ctx).unwrap();

            let out = ctx.dump();
            assert_eq!(*expected, out);
        }
    }

    #[test]
    fn test_parse_sequence_set() {
        let (rem, val) = sequence_set(b"1:*?").unwrap();
        println!("{rem:?}, {val:?}");

        let (rem, val) = sequence_set(b"1:*,5?").unwrap();
        println!("{rem:?}, {val:?}");
    }

    #[test]
    fn test_parse_sequence_set_last_command() {
        assert_eq!(
            sequence_set(b"$?").unwrap(),
            (b"?".as_ref(), SequenceSet::from(Sequence::LastCommand))
        );
        assert_eq!(
            sequence_set(b"1,$,3:*?").unwrap().1,
            SequenceSet::try_from(vec![
                Sequence::Single(SeqOrUid::Value(1.try_into().unwrap())),
                Sequence::LastCommand,
                Sequence::Range(SeqOrUid::Value(3.try_into().unwrap()), SeqOrUid::Asterisk),
            ])
            .unwrap()
        );
        // `$` is not a seq-number: no ranges with it.
        assert!(matches!(sequence_set(b"$:4?"), Ok((b":4?", _))));
        assert!(sequence_set(b"$").is_err());
    }

    #[test]
    fn test_kat_inverse_command_searchres() {
        kat_inverse_command(&[
            (
                b"A FETCH $ (FLAGS)\r\n".as_ref(),
                b"".as_ref(),
                Command::new(
                    "A",
                    CommandBody::fetch(
                        SequenceSet::from(Sequence::LastCommand),
                        vec![MessageDataItemName::Flags],
                        false,
                    )
                    .unwrap(),
                )
                .unwrap(),
            ),
            (
                b"A UID COPY 1,$ INBOX\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::copy(SequenceSet::try_from("1,$").unwrap(), "INBOX", true)
                        .unwrap(),
                )
                .unwrap(),
            ),
            (
                b"A UID SEARCH RETURN (SAVE) $ UID $\r\n",
                b"",
                Command::new(
                    "A",
                    CommandBody::Search {
                        charset: None,
                        criteria: Vec1::try_from(vec![
                            SearchKey::SequenceSet(SequenceSet::from(Sequence::LastCommand)),
                            SearchKey::Uid(SequenceSet::from(Sequence::LastCommand)),
                        ])
                        .unwrap(),
                        uid: true,
                        return_options: Some(vec![SearchReturnOption::Save]),
                    },
                )
                .unwrap(),
            ),
        ]);
    }

    #[test]
    fn test_last_command_in_sequence_set_type() {
        let mut set = SequenceSet::try_from("$,3,1:2").unwrap();
        assert!(set.contains_last_command());
        set.normalize();
        assert_eq!(set, SequenceSet::try_from("1:3,$").unwrap());
        // The saved result cannot be expanded without the session.
        let largest = 10.try_into().unwrap();
        assert_eq!(
            SequenceSet::from(Sequence::LastCommand)
                .iter(largest)
                .count(),
            0
        );
        assert!(
            !SequenceSet::try_from("1:*")
                .unwrap()
                .contains_last_command()
        );
    }

    #[test]
    fn test_parse_seq_number() {
        // Must not be 0.
        assert!(seq_number(b"0?").is_err());

        let (rem, val) = seq_number(b"1?").unwrap();
        println!("{rem:?}, {val:?}");

        let (rem, val) = seq_number(b"*?").unwrap();
        println!("{rem:?}, {val:?}");
    }

    #[test]
    fn test_parse_seq_range() {
        // Must not be 0.
        assert!(seq_range(b"0:1?").is_err());

        assert_eq!(
            (
                SeqOrUid::Value(1.try_into().unwrap()),
                SeqOrUid::Value(2.try_into().unwrap())
            ),
            seq_range(b"1:2?").unwrap().1
        );
        assert_eq!(
            (SeqOrUid::Value(1.try_into().unwrap()), SeqOrUid::Asterisk),
            seq_range(b"1:*?").unwrap().1
        );
        assert_eq!(
            (SeqOrUid::Asterisk, SeqOrUid::Value(10.try_into().unwrap())),
            seq_range(b"*:10?").unwrap().1
        );
    }
}
