//! The realm's RS256 signing keys and the random identifiers the fake hands out. Keys are
//! generated in memory with aws-lc-rs; nothing is written to disk.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const PEM_LABEL: &str = "PRIVATE KEY";

/// One RSA key pair. Its Debug output shows only the key id.
pub(crate) struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    modulus_base64url: String,
    exponent_base64url: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh RSA 2048 key. A failure here means the crypto library is broken,
    /// which no test can recover from, so it panics.
    pub(crate) fn generate() -> SigningKey {
        let key_pair = KeyPair::generate(KeySize::Rsa2048).expect("generate an RSA 2048 key");
        let pkcs8 = key_pair.as_der().expect("encode the RSA key as PKCS#8");
        let encoding = EncodingKey::from_rsa_pem(pkcs8_pem(pkcs8.as_ref()).as_bytes())
            .expect("jsonwebtoken accepts the generated RSA key");
        let components = PublicKeyComponents::<Vec<u8>>::from(key_pair.public_key());
        SigningKey {
            kid: URL_SAFE_NO_PAD.encode(random_bytes::<24>()),
            encoding,
            modulus_base64url: URL_SAFE_NO_PAD.encode(&components.n),
            exponent_base64url: URL_SAFE_NO_PAD.encode(&components.e),
        }
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The key as it appears in the realm's JWKS document.
    pub(crate) fn jwk(&self) -> Value {
        json!({
            "kid": self.kid,
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "n": self.modulus_base64url,
            "e": self.exponent_base64url,
        })
    }

    /// Signs `claims` as an RS256 JWT whose header names this key, as Keycloak does.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign with a generated RSA key")
    }
}

fn pkcs8_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {PEM_LABEL}-----\n{}\n-----END {PEM_LABEL}-----\n",
        lines.join("\n")
    )
}

pub(crate) fn random_bytes<const LENGTH: usize>() -> [u8; LENGTH] {
    let mut bytes = [0_u8; LENGTH];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator works");
    bytes
}

/// A random version-4 UUID in Keycloak's lowercase hyphenated form.
pub(crate) fn random_uuid() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An opaque bearer token: 32 random bytes, base64url.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}
