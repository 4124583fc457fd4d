//! Unpredictable bytes from the operating system (`/dev/urandom`, the kernel's CSPRNG): the
//! admin API's generated token and each run's `runId`.

use std::io::Read;

/// `N` bytes from the kernel's cryptographically secure generator.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}

/// A random (version 4) UUID in its usual form, `xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx`, as
/// Spark's `runId`.
pub fn uuid_v4() -> std::io::Result<String> {
    Ok(format_uuid_v4(bytes::<16>()?))
}

/// Sets the version (4) and variant (RFC 4122) bits of 16 random bytes and formats them.
pub fn format_uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Whether `s` has the shape of a version 4 UUID: 8-4-4-4-12 lowercase hex digits, version
/// nibble 4, variant nibble 8, 9, a or b (what a `runId` must look like).
pub fn is_uuid_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && parts[2].starts_with('4')
        && parts[3].starts_with(['8', '9', 'a', 'b'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let (a, b) = (uuid_v4().unwrap(), uuid_v4().unwrap());
        assert!(is_uuid_v4(&a), "{a}");
        assert!(is_uuid_v4(&b), "{b}");
        assert_ne!(a, b);
        assert_eq!(format_uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(format_uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }
}
