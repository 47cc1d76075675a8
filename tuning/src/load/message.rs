//! Generated RFC 5322 test messages of a requested size, in SMTP DATA wire form.

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::io::Write;
use std::sync::Arc;

/// Longest body line in characters, CRLF excluded (RFC 5322 asks for at most 78).
pub const BODY_LINE_CHARS_MAX: usize = 76;

/// Largest message sequence number; keeps every header the same length.
pub const SEQ_MAX: u64 = 999_999_999_999;

/// Characters of the body: the base64 alphabet plus `.`, so that some lines need stuffing.
const BODY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/.";

/// Builds messages of one size that differ only in Subject and Message-ID.
#[derive(Debug, Clone)]
pub struct Composer {
    from: String,
    date: String,
    run_id: u64,
    header_size_bytes: usize,
    body_size_bytes: usize,
    /// The dot-stuffed body and the line "." after it, shared by every connection.
    body_wire: Arc<[u8]>,
}

impl Composer {
    /// Prepares messages from `from` of about `size_bytes` bytes, body drawn from `seed`.
    ///
    /// The size is exact unless it is smaller than the headers or exactly one byte more.
    pub fn new(from: &str, size_bytes: usize, run_id: u64, date: &str, seed: u64) -> Self {
        let mut composer = Composer {
            from: from.to_owned(),
            date: date.to_owned(),
            run_id,
            header_size_bytes: 0,
            body_size_bytes: 0,
            body_wire: Arc::from([]),
        };
        let mut header = Vec::new();
        composer.write_header(0, &mut header);
        composer.header_size_bytes = header.len();
        let mut body_size_bytes = size_bytes.saturating_sub(header.len());
        if body_size_bytes == 1 {
            // A body is whole CRLF-terminated lines, so it is never one byte long.
            body_size_bytes = 2;
        }
        composer.body_size_bytes = body_size_bytes;
        let mut tail = body_wire(body_size_bytes, seed);
        tail.extend_from_slice(b".\r\n");
        composer.body_wire = Arc::from(tail);
        composer
    }

    /// Size of every message in bytes, as stored (before dot-stuffing).
    pub fn message_size_bytes(&self) -> usize {
        self.header_size_bytes + self.body_size_bytes
    }

    /// Appends message `seq` in DATA wire form (dot-stuffed, ending CRLF . CRLF) to `out`.
    pub fn write_wire(&self, seq: u64, out: &mut Vec<u8>) {
        self.write_wire_header(seq, out);
        out.extend_from_slice(&self.body_wire);
    }

    /// Appends the header of message `seq` to `out`: what differs between messages.
    /// [`Composer::wire_tail`] follows it on the wire.
    pub fn write_wire_header(&self, seq: u64, out: &mut Vec<u8>) {
        let start = out.len();
        self.write_header(seq, out);
        debug_assert_eq!(out.len() - start, self.header_size_bytes);
    }

    /// The part every message shares in DATA wire form: the dot-stuffed body and the
    /// line "." that ends the data, sent from here rather than copied per message.
    pub fn wire_tail(&self) -> Arc<[u8]> {
        self.body_wire.clone()
    }

    fn write_header(&self, seq: u64, out: &mut Vec<u8>) {
        assert!(seq <= SEQ_MAX, "message sequence {seq} over {SEQ_MAX}");
        let Composer {
            from, date, run_id, ..
        } = self;
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            "From: <{from}>\r\n\
             To: undisclosed-recipients:;\r\n\
             Subject: treehouse-tune load {seq:012}\r\n\
             Date: {date}\r\n\
             Message-ID: <{run_id:016x}.{seq:012}@treehouse-tune.invalid>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             \r\n"
        );
    }
}

/// A dot-stuffed body of `size_bytes` bytes of CRLF-terminated lines (before stuffing).
fn body_wire(size_bytes: usize, seed: u64) -> Vec<u8> {
    assert_ne!(size_bytes, 1, "a body of one byte cannot end in CRLF");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(size_bytes + size_bytes / 64);
    let mut remaining = size_bytes;
    while remaining > 0 {
        let mut chars = (remaining - 2).min(BODY_LINE_CHARS_MAX);
        if remaining - chars - 2 == 1 {
            chars -= 1;
        }
        let line_start = out.len();
        for _ in 0..chars {
            out.push(BODY_ALPHABET[rng.gen_range(0..BODY_ALPHABET.len())]);
        }
        if out.get(line_start) == Some(&b'.') {
            out.insert(line_start, b'.');
        }
        out.extend_from_slice(b"\r\n");
        remaining -= chars + 2;
    }
    out
}

/// Formats seconds since the Unix epoch as an RFC 5322 date in UTC.
pub fn rfc5322_date(unix_s: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_s / 86_400;
    let day_s = unix_s % 86_400;
    let weekday = WEEKDAYS[(days % 7) as usize];
    // Civil date from a day count (H. Hinnant's algorithm), for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let (hour, minute, second) = (day_s / 3600, day_s / 60 % 60, day_s % 60);
    let month = MONTHS[(month - 1) as usize];
    format!("{weekday}, {day:02} {month} {year} {hour:02}:{minute:02}:{second:02} +0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes dot-stuffing of a DATA payload and drops the terminator.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let body = wire.strip_suffix(b".\r\n").expect("terminator");
        let mut out = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    #[test]
    fn messages_have_the_requested_size_and_valid_lines() {
        for size_bytes in [
            0, 100, 400, 401, 402, 403, 480, 1000, 4096, 65_536, 1_000_003,
        ] {
            let composer = Composer::new("a@b.test", size_bytes, 7, &rfc5322_date(0), 1);
            let mut wire = Vec::new();
            composer.write_wire(42, &mut wire);
            let message = unstuff(&wire);
            assert_eq!(message.len(), composer.message_size_bytes());
            if size_bytes >= 400 {
                assert_eq!(message.len(), size_bytes, "size {size_bytes}");
            }
            assert!(message.ends_with(b"\r\n"));
            let text = std::str::from_utf8(&message).expect("ascii");
            assert!(text.contains("\r\n\r\n"));
            for line in text.split_terminator("\r\n") {
                assert!(line.len() <= 78, "line of {} chars", line.len());
                assert!(!line.contains('\r') && !line.contains('\n'));
            }
        }
    }

    #[test]
    fn lines_starting_with_a_dot_are_stuffed() {
        let composer = Composer::new("a@b.test", 200_000, 7, &rfc5322_date(0), 3);
        let mut wire = Vec::new();
        composer.write_wire(1, &mut wire);
        let stuffed = wire.windows(4).filter(|w| w == b"\r\n..").count();
        assert!(stuffed > 0, "no line starts with a dot");
        assert!(!wire[..wire.len() - 3].windows(5).any(|w| w == b"\r\n.\r\n"));
        assert_eq!(unstuff(&wire).len(), 200_000);
    }

    #[test]
    fn message_ids_differ_by_sequence() {
        let composer = Composer::new("a@b.test", 1000, 0xabc, "d", 1);
        let id = |seq| {
            let mut wire = Vec::new();
            composer.write_wire(seq, &mut wire);
            let text = String::from_utf8(wire).expect("ascii");
            let line = text.lines().find(|l| l.starts_with("Message-ID:"));
            line.expect("Message-ID").to_owned()
        };
        assert_eq!(
            id(5),
            "Message-ID: <0000000000000abc.000000000005@treehouse-tune.invalid>"
        );
        assert_ne!(id(5), id(6));
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(951_782_400 + 3723),
            "Tue, 29 Feb 2000 01:02:03 +0000"
        );
        assert_eq!(
            rfc5322_date(1_735_689_599),
            "Tue, 31 Dec 2024 23:59:59 +0000"
        );
    }
}
