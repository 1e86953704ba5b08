//! Deterministic hashing: command ids, holdout and split assignment, and the map hasher.
//!
//! Everything that ends up in output or decides who gets what is a specified function of stable
//! input, so results are identical across runs, restarts, machines and versions of this crate:
//!
//! - all hashes are `xxh3_64_with_seed(input, SEED)` with [`SEED`] = `0x6a6f75726e657964`
//!   (the bytes of `"journeyd"`), over UTF-8 fields joined by the unit separator byte `0x1f`;
//! - **command id**: fields `customer_id`, `journey_id`, `trigger_event_id` (the event that
//!   started the instance, unique per customer thanks to dedupe), `step_id`, and the decimal
//!   number of commands the instance issued before this one (so a step reached twice in a cycle
//!   gets a new id); rendered as 16 lowercase hex digits;
//! - **holdout**: fields `"holdout"`, `journey_id`, `customer_id`; the customer is held out when
//!   the hash modulo 10000 is below the holdout in basis points;
//! - **split**: fields `"split"`, `journey_id`, `step_id`, `customer_id`; the hash modulo 10000 is
//!   compared with the arms' cumulative basis points and the first arm whose cumulative sum
//!   exceeds it is taken.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The fixed seed of every deterministic hash (`"journeyd"` as a big-endian integer).
pub const SEED: u64 = 0x6a6f_7572_6e65_7964;

const SEP: u8 = 0x1f;

/// Hashes fields joined by `0x1f` with the fixed seed.
pub fn hash_fields(fields: &[&[u8]]) -> u64 {
    let mut buf = [0u8; 512];
    let total: usize = fields.iter().map(|f| f.len() + 1).sum();
    if total <= buf.len() {
        let mut at = 0;
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                buf[at] = SEP;
                at += 1;
            }
            buf[at..at + f.len()].copy_from_slice(f);
            at += f.len();
        }
        xxh3_64_with_seed(&buf[..at], SEED)
    } else {
        let mut v = Vec::with_capacity(total);
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                v.push(SEP);
            }
            v.extend_from_slice(f);
        }
        xxh3_64_with_seed(&v, SEED)
    }
}

/// The deterministic command id (see module doc).
pub fn command_id(
    customer_id: &str,
    journey_id: &str,
    trigger_event_id: &str,
    step_id: &str,
    counter: u32,
) -> String {
    let n = counter.to_string();
    let h = hash_fields(&[
        customer_id.as_bytes(),
        journey_id.as_bytes(),
        trigger_event_id.as_bytes(),
        step_id.as_bytes(),
        n.as_bytes(),
    ]);
    format!("{h:016x}")
}

/// Appends the command id (see module doc) to `out` as 16 lowercase hex digits, without
/// allocating.
pub fn write_command_id(
    out: &mut String,
    customer_id: &str,
    journey_id: &str,
    trigger_event_id: &str,
    step_id: &str,
    counter: u32,
) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = counter;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let h = hash_fields(&[
        customer_id.as_bytes(),
        journey_id.as_bytes(),
        trigger_event_id.as_bytes(),
        step_id.as_bytes(),
        &digits[at..],
    ]);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..16).rev() {
        out.push(HEX[((h >> (i * 4)) & 0xf) as usize] as char);
    }
}

/// Whether the customer is in the journey's control group (see module doc).
pub fn is_holdout(journey_id: &str, customer_id: &str, basis_points: u32) -> bool {
    if basis_points == 0 {
        return false;
    }
    let h = hash_fields(&[b"holdout", journey_id.as_bytes(), customer_id.as_bytes()]);
    ((h % 10_000) as u32) < basis_points
}

/// The split bucket in `0..10000` for a customer at a split step (see module doc).
pub fn split_bucket(journey_id: &str, step_id: &str, customer_id: &str) -> u32 {
    let h = hash_fields(&[
        b"split",
        journey_id.as_bytes(),
        step_id.as_bytes(),
        customer_id.as_bytes(),
    ]);
    (h % 10_000) as u32
}

/// The dedupe fingerprint of an event id.
pub fn event_id_hash(event_id: &str) -> u64 {
    xxh3_64_with_seed(event_id.as_bytes(), SEED)
}

/// A small, fast, unseeded hasher for in-memory maps whose iteration order never reaches the
/// output: `rustc-hash`'s Fx hasher (deterministic, unlike std's randomised default). Its
/// version 2 mixes byte strings fully and rotates the result, so ids that differ only in their
/// last bytes (`c1000000`, `c1000001`) spread over both the low bits hashbrown takes the bucket
/// from and the high bits of its control bytes (checked below).
pub use rustc_hash::FxHasher;
/// Builds [`FxHasher`]s.
pub type FxBuild = rustc_hash::FxBuildHasher;
/// A deterministic hash map for internal indexes.
pub type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_id_is_stable_and_distinct() {
        let a = command_id("c1", "j", "e1", "s", 0);
        assert_eq!(a, command_id("c1", "j", "e1", "s", 0));
        assert_eq!(a.len(), 16);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, command_id("c1", "j", "e2", "s", 0));
        assert_ne!(a, command_id("c1", "j", "e1", "t", 0));
        assert_ne!(a, command_id("c1", "j", "e1", "s", 1));
        // The separator keeps field boundaries apart.
        assert_ne!(
            command_id("ab", "c", "e", "s", 0),
            command_id("a", "bc", "e", "s", 0)
        );
        // The exact specified function.
        let expected = xxh3_64_with_seed(b"c1\x1fj\x1fe1\x1fs\x1f0", SEED);
        assert_eq!(a, format!("{expected:016x}"));
    }

    #[test]
    fn written_command_id_equals_the_formatted_one() {
        for (n, c) in [
            (0u32, "c1"),
            (7, "c-42"),
            (10, "x"),
            (123_456, "y"),
            (u32::MAX, "z"),
        ] {
            let mut s = String::from("keep:");
            write_command_id(&mut s, c, "j", "e1", "s", n);
            assert_eq!(s, format!("keep:{}", command_id(c, "j", "e1", "s", n)));
        }
    }

    #[test]
    fn long_fields_hash_like_short_path() {
        let long = "x".repeat(600);
        let h = hash_fields(&[long.as_bytes(), b"y"]);
        let mut v = long.clone().into_bytes();
        v.push(0x1f);
        v.push(b'y');
        assert_eq!(h, xxh3_64_with_seed(&v, SEED));
    }

    #[test]
    fn holdout_rate_and_bounds() {
        assert!(!is_holdout("j", "c", 0));
        assert!(is_holdout("j", "c", 10_000));
        let held = (0..10_000)
            .filter(|i| is_holdout("j", &format!("c{i}"), 1_000))
            .count();
        assert!((800..1200).contains(&held), "{held}");
        let h = hash_fields(&[b"holdout", b"j", b"c7"]);
        assert_eq!(is_holdout("j", "c7", 5000), h % 10_000 < 5000);
    }

    #[test]
    fn fx_hasher_spreads_similar_ids_over_low_bits() {
        use std::hash::Hasher;
        let buckets: std::collections::HashSet<u64> = (0..4096)
            .map(|i| {
                let mut h = FxHasher::default();
                h.write(format!("c{}", 1_000_000 + i).as_bytes());
                h.finish() & 0xfff
            })
            .collect();
        assert!(buckets.len() > 2000, "{}", buckets.len());
    }

    #[test]
    fn fx_hasher_spreads_similar_ids_over_high_bits() {
        // hashbrown's control bytes are the top 7 bits.
        use std::hash::Hasher;
        let tags: std::collections::HashSet<u64> = (0..4096)
            .map(|i| {
                let mut h = FxHasher::default();
                h.write(format!("c{}", 1_000_000 + i).as_bytes());
                h.finish() >> 57
            })
            .collect();
        assert!(tags.len() > 120, "{}", tags.len());
    }

    #[test]
    fn split_bucket_is_deterministic() {
        assert_eq!(split_bucket("j", "s", "c"), split_bucket("j", "s", "c"));
        let h = hash_fields(&[b"split", b"j", b"s", b"c"]);
        assert_eq!(split_bucket("j", "s", "c") as u64, h % 10_000);
    }
}
