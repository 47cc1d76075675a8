//! Mailbox names: modified UTF-7 (RFC 3501 §5.1.3), the rules a name must follow, and
//! LIST wildcard matching. Names are kept in UTF-8 inside treehouse.

/// The hierarchy separator.
pub const SEPARATOR: char = '/';

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Why a mailbox name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Bytes that are not valid modified UTF-7 (or UTF-8).
    #[error("mailbox name is not valid modified UTF-7")]
    Encoding,
    /// A name that breaks a naming rule.
    #[error("{0}")]
    Rule(&'static str),
}

fn base64_value(byte: u8) -> Option<u32> {
    BASE64.iter().position(|&b| b == byte).map(|p| p as u32)
}

/// Decodes a modified UTF-7 name into UTF-8.
pub fn decode_utf7(bytes: &[u8]) -> Result<String, NameError> {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(NameError::Encoding);
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let end = bytes[i + 1..]
            .iter()
            .position(|&c| c == b'-')
            .map(|p| i + 1 + p)
            .ok_or(NameError::Encoding)?;
        let run = &bytes[i + 1..end];
        if run.is_empty() {
            out.push('&');
        } else {
            decode_run(run, &mut out)?;
        }
        i = end + 1;
    }
    Ok(out)
}

fn decode_run(run: &[u8], out: &mut String) -> Result<(), NameError> {
    let mut bits = 0u32;
    let mut nbits = 0u32;
    let mut units = Vec::new();
    for &c in run {
        let v = base64_value(c).ok_or(NameError::Encoding)?;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            units.push(((bits >> nbits) & 0xffff) as u16);
        }
    }
    if nbits >= 6 || bits & ((1 << nbits) - 1) != 0 {
        return Err(NameError::Encoding);
    }
    let text = String::from_utf16(&units).map_err(|_| NameError::Encoding)?;
    if text.chars().any(|c| (' '..='~').contains(&c)) {
        return Err(NameError::Encoding);
    }
    out.push_str(&text);
    Ok(())
}

/// Encodes a UTF-8 name as modified UTF-7.
pub fn encode_utf7(name: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_run(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_run(&mut pending, &mut out);
    out
}

fn flush_run(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (k, &b)| acc | (u32::from(b) << (16 - 8 * k)));
        for k in 0..=n {
            out.push(char::from(BASE64[((v >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    out.push('-');
    units.clear();
}

/// `INBOX` in any case becomes `INBOX`, also as the first level of a hierarchy.
pub fn canonical(name: &str) -> String {
    let first = name.split(SEPARATOR).next().unwrap_or(name);
    if first.eq_ignore_ascii_case("INBOX") {
        format!("INBOX{}", &name[first.len()..])
    } else {
        name.to_string()
    }
}

/// Checks a (decoded, canonical) name against the naming rules.
pub fn check(name: &str, max_bytes: usize, max_depth: usize) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Rule("mailbox name is empty"));
    }
    if name.len() > max_bytes {
        return Err(NameError::Rule("mailbox name is too long"));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Rule("mailbox name contains control characters"));
    }
    if name.contains(['*', '%']) {
        return Err(NameError::Rule("mailbox name contains a wildcard"));
    }
    let parts: Vec<&str> = name.split(SEPARATOR).collect();
    if parts.len() > max_depth {
        return Err(NameError::Rule("mailbox hierarchy is too deep"));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err(NameError::Rule("mailbox name has an empty level"));
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(NameError::Rule("mailbox name has a . or .. level"));
    }
    Ok(())
}

/// Whether `name` matches a LIST pattern (`*` matches anything, `%` anything but `/`).
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern = canonical(pattern);
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    // Iterative matcher with one backtrack point per wildcard kind; bounded by |p|*|n|.
    let mut memo = vec![vec![None; n.len() + 1]; p.len() + 1];
    match_memo(p, n, 0, 0, &mut memo)
}

fn match_memo(p: &[char], n: &[char], i: usize, j: usize, memo: &mut [Vec<Option<bool>>]) -> bool {
    if let Some(v) = memo[i][j] {
        return v;
    }
    let v = match p.get(i) {
        None => j == n.len(),
        Some('*') => (j..=n.len()).any(|k| match_memo(p, n, i + 1, k, memo)),
        Some('%') => {
            let stop = n[j..]
                .iter()
                .position(|&c| c == SEPARATOR)
                .map_or(n.len(), |q| j + q);
            (j..=stop).any(|k| match_memo(p, n, i + 1, k, memo))
        }
        Some(&c) => n.get(j) == Some(&c) && match_memo(p, n, i + 1, j + 1, memo),
    };
    memo[i][j] = Some(v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf7_round_trips_rfc_example() {
        let name = "~peter/mail/台北/日本語";
        let encoded = encode_utf7(name);
        assert_eq!(encoded, "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        assert_eq!(decode_utf7(encoded.as_bytes()).as_deref(), Ok(name));
        assert_eq!(encode_utf7("a&b"), "a&-b");
        assert_eq!(decode_utf7(b"a&-b").as_deref(), Ok("a&b"));
        assert_eq!(decode_utf7(b"Entw&APw-rfe").as_deref(), Ok("Entwürfe"));
    }

    #[test]
    fn utf7_rejects_bad_input() {
        assert_eq!(decode_utf7(b"&U,BTFw"), Err(NameError::Encoding));
        assert_eq!(decode_utf7(b"&AGE-"), Err(NameError::Encoding));
        assert_eq!(decode_utf7(b"caf\xc3\xa9"), Err(NameError::Encoding));
        assert_eq!(decode_utf7(b"&U/BTFw-"), Err(NameError::Encoding));
    }

    #[test]
    fn rules_and_wildcards() {
        assert_eq!(canonical("inbox/Sub"), "INBOX/Sub");
        assert_eq!(canonical("inboxes"), "inboxes");
        assert!(check("a/b", 100, 4).is_ok());
        assert!(check("a/../b", 100, 4).is_err());
        assert!(check("a//b", 100, 4).is_err());
        assert!(check("a/b/c/d/e", 100, 4).is_err());
        assert!(check(&"x".repeat(101), 100, 4).is_err());
        assert!(check("a\u{0}b", 100, 4).is_err());
        assert!(matches("*", "a/b"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("S%t", "Sent"));
    }
}
