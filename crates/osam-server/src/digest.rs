//! SHA-256 fingerprints used as cache keys and token bindings: they stand for a value (a bearer
//! token, a subject's roles) without holding it.

use aws_lc_rs::digest::{Context, SHA256};

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha256_of_fields([bytes])
}

/// The SHA-256 of several fields, each prefixed with its length so that no two different field
/// lists hash the same input (`["ab", "c"]` differs from `["a", "bc"]`).
pub fn sha256_of_fields<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
    let mut context = Context::new(&SHA256);
    for field in fields {
        context.update(&(field.len() as u64).to_be_bytes());
        context.update(field);
    }
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(context.finish().as_ref());
    fingerprint
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_matter() {
        assert_ne!(
            sha256_of_fields([&b"ab"[..], b"c"]),
            sha256_of_fields([&b"a"[..], b"bc"])
        );
        assert_eq!(sha256(b"x"), sha256_of_fields([&b"x"[..]]));
    }
}
