//! crc32c of two byte strings joined, from their own crc32c values: a large message body
//! is checksummed once, when it is staged, and that value extends the batch's payload
//! crc without a second pass over the body.
//!
//! The arithmetic is that of zlib's `crc32_combine` (multiplication modulo the
//! polynomial, in the reflected bit order, by x to the power of eight times the second
//! string's length) with the crc32c polynomial. The `crc32c` crate has a combine of its
//! own, but it squares 32×32 bit matrices on every call, which takes longer than
//! checksumming a 64 KiB body again.

/// The crc32c polynomial, reflected.
const POLY: u32 = 0x82f6_3b78;

/// `a * b` modulo the polynomial, both in the reflected order (x^0 is the top bit).
const fn mul_mod_p(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = 1u32 << 31;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        bit >>= 1;
    }
    product
}

/// `X_POW_2K[k]` is x^(2^k) modulo the polynomial.
const X_POW_2K: [u32; 64] = {
    let mut table = [0u32; 64];
    table[0] = 1 << 30; // x^1
    let mut k = 1;
    while k < table.len() {
        table[k] = mul_mod_p(table[k - 1], table[k - 1]);
        k += 1;
    }
    table
};

/// x^(8 * bytes) modulo the polynomial: the factor that moves a crc past `bytes` bytes.
fn x_pow_8n(bytes: u64) -> u32 {
    let mut power = 1u32 << 31; // x^0
    let mut rest = bytes;
    let mut k = 3; // 8 = 2^3
    while rest != 0 {
        if rest & 1 != 0 {
            power = mul_mod_p(X_POW_2K[k], power);
        }
        rest >>= 1;
        k += 1;
    }
    power
}

/// The crc32c of `a` followed by `b`, given `crc_a` (of `a`, or the running crc32c
/// that `crc32c::crc32c_append` would continue), `crc_b = crc32c(b)` and `b.len()`.
pub fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    mul_mod_p(x_pow_8n(len_b as u64), crc_a) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combining_equals_checksumming_the_join() {
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 3, 8, 4095, 4096, 65_536, 100_000, 199_999, 200_003] {
            let (a, b) = data.split_at(split);
            let whole = crc32c::crc32c(&data);
            assert_eq!(
                crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len()),
                whole,
                "split at {split}"
            );
            // As a continuation of a running crc, the way a batch's payload crc grows.
            let running = crc32c::crc32c_append(crc32c::crc32c(b"head"), a);
            assert_eq!(
                crc32c_combine(running, crc32c::crc32c(b), b.len()),
                crc32c::crc32c_append(running, b),
                "split at {split}"
            );
        }
    }
}
