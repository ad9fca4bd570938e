//! 256-bit secrets kept in files (seal keys, derivation secrets, signing seeds): 64 hex
//! characters, created with mode 0600 and fsynced, never overwritten.

use std::io::Write;
use std::path::Path;

/// Reads a 32-byte secret from `path`; `Ok(None)` if the file does not exist.
pub fn read_secret(path: &Path) -> Result<Option<[u8; 32]>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode_hex(text.trim())
            .map(Some)
            .ok_or_else(|| format!("{} must hold exactly 64 hex characters", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    }
}

/// Writes `secret` to a new file at `path` (creating its directory); refuses to replace
/// an existing file.
pub fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<(), String> {
    create_private_file(path, encode_hex(secret).as_bytes())
}

/// Creates `path` (which must not exist yet) readable by its owner only (0600), holding
/// `contents`, durably: how every file holding a secret is made.
pub fn create_private_file(path: &Path, contents: &[u8]) -> Result<(), String> {
    let fail = |err: std::io::Error| format!("cannot write {}: {err}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut file = crate::private::file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// The secret at `path`, created from operating-system randomness if the file does not
/// exist. The flag says whether it was created now.
pub fn load_or_create_secret(path: &Path) -> Result<([u8; 32], bool), String> {
    if let Some(secret) = read_secret(path)? {
        return Ok((secret, false));
    }
    let secret = random_secret()?;
    write_secret(path, &secret)?;
    Ok((secret, true))
}

/// 32 bytes of operating-system randomness.
pub fn random_secret() -> Result<[u8; 32], String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("operating system randomness failed: {e}"))?;
    Ok(secret)
}

/// Lowercase hex of `bytes` (how secrets, digests and tokens derived from them are
/// written).
pub fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_created_once_then_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("nested/secret.key");
        let (first, created) = load_or_create_secret(&path).expect("created");
        assert!(created);
        let (again, created) = load_or_create_secret(&path).expect("read");
        assert!(!created);
        assert_eq!(first, again);
        assert!(write_secret(&path, &[0; 32]).is_err(), "never overwritten");
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_new_secret() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secret.key");
        std::fs::write(&path, "not hex").expect("write");
        assert!(load_or_create_secret(&path).is_err());
    }
}
