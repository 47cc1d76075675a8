//! Mail addresses as accounts see them, and which virtual shard an account lives on.

/// Lower-cases an address for lookup; local parts are matched case-insensitively,
/// as every mainstream server does for its own domains.
pub fn normalize(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

/// Splits `local@domain` into its parts; `None` when there is no `@` or a part is empty.
pub fn split(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some((local, domain))
}

/// The virtual shard that owns `account`: a stable hash (crc32c of the normalized
/// address) modulo the shard count fixed at format time.
pub fn shard_of(account: &str, shard_count: u32) -> u32 {
    assert!(shard_count > 0, "a store has at least one shard");
    crc32c::crc32c(normalize(account).as_bytes()) % shard_count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_stable_and_case_insensitive() {
        assert_eq!(
            shard_of("Alice@Example.test", 16),
            shard_of("alice@example.test", 16)
        );
        let spread: std::collections::BTreeSet<u32> = (0..64)
            .map(|i| shard_of(&format!("user{i}@example.test"), 8))
            .collect();
        assert_eq!(spread.len(), 8, "64 accounts should cover all 8 shards");
    }

    #[test]
    fn split_rejects_missing_parts() {
        assert_eq!(split("a@b"), Some(("a", "b")));
        assert_eq!(split("@b"), None);
        assert_eq!(split("a@"), None);
        assert_eq!(split("ab"), None);
    }
}
