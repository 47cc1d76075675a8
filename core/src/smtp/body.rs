//! The message body of one transaction as it arrives: line endings normalized to CRLF,
//! size and text line length checked, never stored past the size limit.

/// Why a body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejection {
    /// The body grew past `max_message_bytes`.
    TooBig,
    /// A line grew past `max_text_line_bytes` (counting its CRLF).
    LineTooLong,
}

/// A body being received (DATA after dot-unstuffing, or BDAT chunks).
///
/// Every line ending, CRLF, bare LF or bare CR, is stored as CRLF. Once a limit is
/// crossed the bytes are dropped and later input is only scanned for its end.
pub(super) struct Body {
    bytes: Vec<u8>,
    line_bytes: usize,
    pending_cr: bool,
    rejection: Option<Rejection>,
    max_bytes: u64,
    max_line_bytes: usize,
}

impl Body {
    /// An empty body with the session's limits.
    pub(super) fn new(max_bytes: u64, max_line_bytes: usize) -> Self {
        Body {
            bytes: Vec::new(),
            line_bytes: 0,
            pending_cr: false,
            rejection: None,
            max_bytes,
            max_line_bytes,
        }
    }

    /// Appends received bytes.
    pub(super) fn push(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.rejection.is_none() {
            if self.pending_cr {
                self.pending_cr = false;
                self.end_line();
                if data[0] == b'\n' {
                    data = &data[1..];
                }
                continue;
            }
            match data.iter().position(|&b| b == b'\r' || b == b'\n') {
                None => {
                    self.text(data);
                    data = &[];
                }
                Some(at) => {
                    self.text(&data[..at]);
                    if data[at] == b'\r' {
                        self.pending_cr = true;
                    } else {
                        self.end_line();
                    }
                    data = &data[at + 1..];
                }
            }
        }
    }

    /// Whether `more` further bytes would cross the size limit.
    pub(super) fn would_exceed(&self, more: usize) -> bool {
        (self.bytes.len() as u64).saturating_add(more as u64) > self.max_bytes
    }

    /// Refuses the body as too big without reading the bytes that make it so.
    pub(super) fn reject_too_big(&mut self) {
        self.reject(Rejection::TooBig);
    }

    /// The rejection so far, if any.
    pub(super) fn rejection(&self) -> Option<Rejection> {
        self.rejection
    }

    /// The complete body, or why it was refused.
    pub(super) fn finish(mut self) -> Result<Vec<u8>, Rejection> {
        if self.pending_cr {
            self.pending_cr = false;
            self.end_line();
        }
        match self.rejection {
            Some(rejection) => Err(rejection),
            None => Ok(self.bytes),
        }
    }

    fn text(&mut self, text: &[u8]) {
        self.line_bytes += text.len();
        if self.line_bytes.saturating_add(2) > self.max_line_bytes {
            self.reject(Rejection::LineTooLong);
            return;
        }
        self.store(text);
    }

    fn end_line(&mut self) {
        self.line_bytes = 0;
        self.store(b"\r\n");
    }

    fn store(&mut self, bytes: &[u8]) {
        if self.rejection.is_some() {
            return;
        }
        if self.would_exceed(bytes.len()) {
            self.reject(Rejection::TooBig);
            return;
        }
        self.bytes.extend_from_slice(bytes);
    }

    fn reject(&mut self, rejection: Rejection) {
        if self.rejection.is_none() {
            self.rejection = Some(rejection);
            self.bytes = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&[u8]]) -> Result<Vec<u8>, Rejection> {
        let mut body = Body::new(100, 20);
        for chunk in chunks {
            body.push(chunk);
        }
        body.finish()
    }

    #[test]
    fn line_endings_become_crlf_across_chunks() {
        let expected = b"a\r\nb\r\nc\r\nd\r\n".to_vec();
        assert_eq!(body(&[b"a\r\nb\nc\rd\r"]), Ok(expected.clone()));
        assert_eq!(body(&[b"a\r", b"\nb\n", b"c\r", b"d\r"]), Ok(expected));
        assert_eq!(body(&[b"x\r", b"\r\n"]), Ok(b"x\r\n\r\n".to_vec()));
    }

    #[test]
    fn limits_reject_and_drop_bytes() {
        assert_eq!(
            body(&[&[b'x'; 18], b"\r\n"]),
            Ok([&[b'x'; 18][..], b"\r\n"].concat())
        );
        assert_eq!(
            body(&[&[b'x'; 10], &[b'x'; 9], b"\r\n"]),
            Err(Rejection::LineTooLong)
        );
        let lines: Vec<&[u8]> = std::iter::repeat_n(&b"0123456789\r\n"[..], 9).collect();
        assert_eq!(body(&lines), Err(Rejection::TooBig));
    }
}
