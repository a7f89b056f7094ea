//! Credentials in memory only. Neither `Debug` nor `Display` can print a secret, so a
//! credential that ends up in a log line, an error or a status shows as `<redacted>`.

use std::fmt;

/// A secret string: readable only through [`SecretString::expose`], never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The only way to read the secret; call it where it is sent, nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        SecretString(value)
    }
}

/// What a registry or repository is authenticated with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username and password (HTTP basic; for OCI, exchanged for a token when the registry asks).
    Basic {
        username: String,
        password: SecretString,
    },
    /// A bearer token with no username, sent as it is.
    Bearer { token: SecretString },
    /// Docker's `identitytoken`: a refresh token, exchanged at the registry's token service
    /// for an access token before a pull ([`crate::identity_token`]).
    IdentityToken { token: SecretString },
}

impl Credentials {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: SecretString::new(password),
        }
    }

    pub fn bearer(token: impl Into<String>) -> Self {
        Credentials::Bearer {
            token: SecretString::new(token),
        }
    }

    /// Docker's `identitytoken` (a refresh token for the registry's token service).
    pub fn identity_token(token: impl Into<String>) -> Self {
        Credentials::IdentityToken {
            token: SecretString::new(token),
        }
    }

    /// The username, which is not secret and may be shown.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            Credentials::Bearer { .. } | Credentials::IdentityToken { .. } => None,
        }
    }

    /// A one-way identity for cache keys: equal credentials give equal identities within
    /// this process, and the secret cannot be recovered (sha256 under a random per-process
    /// salt), so keys may be kept, compared and dropped freely.
    pub fn identity(&self) -> String {
        let mut bytes = process_salt().to_vec();
        match self {
            Credentials::Basic { username, password } => {
                bytes.extend_from_slice(b"basic\0");
                bytes.extend_from_slice(username.as_bytes());
                bytes.push(0);
                bytes.extend_from_slice(password.expose().as_bytes());
            }
            Credentials::Bearer { token } => {
                bytes.extend_from_slice(b"bearer\0");
                bytes.extend_from_slice(token.expose().as_bytes());
            }
            Credentials::IdentityToken { token } => {
                bytes.extend_from_slice(b"identity\0");
                bytes.extend_from_slice(token.expose().as_bytes());
            }
        }
        format!("cred-{}", &crate::digest::Digest::of(&bytes).hex()[..32])
    }

    /// A short, secret-free description for messages: `basic (user "ci")`, `bearer token`.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Basic { username, .. } => format!("basic (user {username:?})"),
            Credentials::Bearer { .. } => "bearer token".to_string(),
            Credentials::IdentityToken { .. } => "identity token".to_string(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer { .. } => f
                .debug_struct("Bearer")
                .field("token", &"<redacted>")
                .finish(),
            Credentials::IdentityToken { .. } => f
                .debug_struct("IdentityToken")
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Random per process (std's `RandomState` keys come from the OS), made once.
fn process_salt() -> &'static [u8; 16] {
    use std::hash::{BuildHasher as _, Hasher as _};
    static SALT: std::sync::OnceLock<[u8; 16]> = std::sync::OnceLock::new();
    SALT.get_or_init(|| {
        let mut salt = [0u8; 16];
        for (i, chunk) in salt.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
        salt
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let basic = Credentials::basic("ci", "hunter2-very-secret");
        let bearer = Credentials::bearer("tok-very-secret");
        let identity = Credentials::identity_token("refresh-very-secret");
        for text in [
            format!("{basic:?}"),
            format!("{basic}"),
            format!("{basic:#?}"),
            format!("{bearer:?}"),
            format!("{bearer}"),
            format!("{identity:?}"),
            format!("{identity}"),
        ] {
            assert!(!text.contains("very-secret"), "leaked in {text}");
        }
        assert!(format!("{basic:?}").contains("ci"));
    }
}
