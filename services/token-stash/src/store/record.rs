//! The embedded backend's on-disk encodings. Keys are big-endian so that byte order is
//! time order, which lets range scans find everything expired up to a moment.

use tessera_clock::UnixMillis;

use super::{GoneReason, NewEntry, StoredEntry};
use crate::token::TokenKey;

const RECORD_VERSION: u8 = 1;
const FLAG_SINGLE_USE: u8 = 1;

/// An entry as stored: the entry plus what is needed to clean up its index rows.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub single_use: bool,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub namespace: String,
    pub owner: String,
    pub sealed_token: Vec<u8>,
    pub value: Vec<u8>,
}

impl Record {
    pub fn from_new(entry: NewEntry) -> Self {
        Record {
            single_use: entry.single_use,
            created_at: entry.created_at,
            expires_at: entry.expires_at,
            namespace: entry.namespace.as_str().to_owned(),
            owner: entry
                .owner
                .map(|o| o.as_str().to_owned())
                .unwrap_or_default(),
            sealed_token: entry.sealed_token,
            value: entry.value,
        }
    }

    pub fn into_stored(self) -> StoredEntry {
        StoredEntry {
            namespace: self.namespace,
            owner: self.owner,
            value: self.value,
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            26 + self.namespace.len()
                + self.owner.len()
                + self.sealed_token.len()
                + self.value.len(),
        );
        out.push(RECORD_VERSION);
        out.push(if self.single_use { FLAG_SINGLE_USE } else { 0 });
        out.extend_from_slice(&self.created_at.0.to_be_bytes());
        out.extend_from_slice(&self.expires_at.0.to_be_bytes());
        for field in [
            self.namespace.as_bytes(),
            self.owner.as_bytes(),
            &self.sealed_token,
        ] {
            // Field lengths are bounded by validation (64, 256 and ~100 bytes).
            out.extend_from_slice(&(field.len() as u16).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.value);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes);
        if reader.take(1)?[0] != RECORD_VERSION {
            return None;
        }
        let flags = reader.take(1)?[0];
        let created_at = UnixMillis(reader.u64()?);
        let expires_at = UnixMillis(reader.u64()?);
        let namespace = String::from_utf8(reader.field()?.to_vec()).ok()?;
        let owner = String::from_utf8(reader.field()?.to_vec()).ok()?;
        let sealed_token = reader.field()?.to_vec();
        Some(Record {
            single_use: flags & FLAG_SINGLE_USE != 0,
            created_at,
            expires_at,
            namespace,
            owner,
            sealed_token,
            value: reader.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        self.take(usize::from(len))
    }
}

/// `expires_at ‖ key`: ordered by time, unique by key.
pub(super) fn time_key(at: UnixMillis, key: &TokenKey) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&at.0.to_be_bytes());
    out[8..].copy_from_slice(&key.0);
    out
}

/// Splits a [`time_key`] back into its parts.
pub(super) fn split_time_key(bytes: &[u8]) -> Option<(UnixMillis, TokenKey)> {
    if bytes.len() != 40 {
        return None;
    }
    let at = UnixMillis(u64::from_be_bytes(bytes[..8].try_into().ok()?));
    let key = TokenKey(bytes[8..].try_into().ok()?);
    Some((at, key))
}

/// The prefix of every owner-index row of one namespace and owner.
pub(super) fn owner_prefix(namespace: &str, owner: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + namespace.len() + owner.len());
    out.extend_from_slice(&(namespace.len() as u16).to_be_bytes());
    out.extend_from_slice(namespace.as_bytes());
    out.extend_from_slice(&(owner.len() as u16).to_be_bytes());
    out.extend_from_slice(owner.as_bytes());
    out
}

/// One owner-index row's key: the owner prefix then the entry's key.
pub(super) fn owner_row(namespace: &str, owner: &str, key: &TokenKey) -> Vec<u8> {
    let mut out = owner_prefix(namespace, owner);
    out.extend_from_slice(&key.0);
    out
}

/// One row of the owner index by creation time: the owner prefix, the creation time, then
/// the entry's key, so a range scan from a time finds what was added since.
pub(super) fn owner_time_row(
    namespace: &str,
    owner: &str,
    created_at: UnixMillis,
    key: &TokenKey,
) -> Vec<u8> {
    let mut out = owner_prefix(namespace, owner);
    out.extend_from_slice(&created_at.0.to_be_bytes());
    out.extend_from_slice(&key.0);
    out
}

/// One owner-index row's value: the entry's expiry then its sealed token.
pub(super) fn owner_value(expires_at: UnixMillis, sealed_token: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + sealed_token.len());
    out.extend_from_slice(&expires_at.0.to_be_bytes());
    out.extend_from_slice(sealed_token);
    out
}

/// A tombstone's value: why the token went, when, and until when it is remembered.
pub(super) fn tombstone(reason: GoneReason, at: UnixMillis, until: UnixMillis) -> [u8; 17] {
    let mut out = [0u8; 17];
    out[0] = reason.as_byte();
    out[1..9].copy_from_slice(&at.0.to_be_bytes());
    out[9..].copy_from_slice(&until.0.to_be_bytes());
    out
}

/// Reads a tombstone: reason, when it went, remembered until.
pub(super) fn read_tombstone(bytes: &[u8]) -> Option<(GoneReason, UnixMillis, UnixMillis)> {
    if bytes.len() != 17 {
        return None;
    }
    let reason = GoneReason::from_byte(bytes[0])?;
    let at = UnixMillis(u64::from_be_bytes(bytes[1..9].try_into().ok()?));
    let until = UnixMillis(u64::from_be_bytes(bytes[9..].try_into().ok()?));
    Some((reason, at, until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let record = Record {
            single_use: true,
            created_at: UnixMillis(1),
            expires_at: UnixMillis(2),
            namespace: "code".into(),
            owner: "user-1".into(),
            sealed_token: vec![9; 60],
            value: b"payload".to_vec(),
        };
        let back = Record::decode(&record.encode()).expect("decodes");
        assert!(back.single_use);
        assert_eq!(back.expires_at, UnixMillis(2));
        assert_eq!(back.owner, "user-1");
        assert_eq!(back.sealed_token, vec![9; 60]);
        assert_eq!(back.value, b"payload");
    }

    #[test]
    fn time_keys_sort_by_time() {
        let late = time_key(UnixMillis(256), &TokenKey([0; 32]));
        let early = time_key(UnixMillis(255), &TokenKey([255; 32]));
        assert!(early < late);
        assert_eq!(
            split_time_key(&late).map(|(at, _)| at),
            Some(UnixMillis(256))
        );
    }
}
