//! The admin API's bearer token: the job file's `[admin].token`, else one generated at each
//! start from the kernel's CSPRNG and written to `CHECKPOINT/admin-token` (mode 0600, so only
//! the job's user can read it; `weir plugin swap --job JOB.toml` reads it from there).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where a generated token is kept.
pub fn file(checkpoint: &Path) -> PathBuf {
    crate::checkpoint::layout::admin_token(checkpoint)
}

/// A fresh token: 32 random bytes as 64 hex digits.
pub fn generate() -> std::io::Result<String> {
    Ok(crate::random::bytes::<32>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `token` to `CHECKPOINT/admin-token`, created with mode 0600 (a temporary file created
/// with that mode and renamed over, so the token is never readable by others, not even for a
/// moment, whatever an older file's mode was).
pub fn write(checkpoint: &Path, token: &str) -> std::io::Result<()> {
    let path = file(checkpoint);
    let tmp = checkpoint.join(format!(".admin-token.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    crate::atomic_file::sync_dir(checkpoint)
}

/// The token a running job generated, if its checkpoint has one.
pub fn read(checkpoint: &Path) -> Option<String> {
    std::fs::read_to_string(file(checkpoint)).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

/// Whether `given` is `expected`, in time that does not depend on where they differ (both are
/// hashed first, so not on their lengths either).
pub fn matches(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_generated_token_is_random_and_only_its_owner_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // An older file others could read: the new one must not inherit its mode.
        std::fs::write(file(dir.path()), "old").unwrap();
        std::fs::set_permissions(file(dir.path()), std::fs::Permissions::from_mode(0o644)).unwrap();
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        write(dir.path(), &a).unwrap();
        let mode = std::fs::metadata(file(dir.path())).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(dir.path()).as_deref(), Some(a.as_str()));
    }

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(matches("s3cret", "s3cret"));
        assert!(!matches("s3cres", "s3cret"));
        assert!(!matches("s3cre", "s3cret"));
        assert!(!matches("", "s3cret"));
    }
}
