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
    /// A bearer or identity token with no username.
    Bearer { token: SecretString },
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

    /// The username, which is not secret and may be shown.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            Credentials::Bearer { .. } => None,
        }
    }

    /// A short, secret-free description for messages: `basic (user "ci")`, `bearer token`.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Basic { username, .. } => format!("basic (user {username:?})"),
            Credentials::Bearer { .. } => "bearer token".to_string(),
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
        }
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let basic = Credentials::basic("ci", "hunter2-very-secret");
        let bearer = Credentials::bearer("tok-very-secret");
        for text in [
            format!("{basic:?}"),
            format!("{basic}"),
            format!("{basic:#?}"),
            format!("{bearer:?}"),
            format!("{bearer}"),
        ] {
            assert!(!text.contains("very-secret"), "leaked in {text}");
        }
        assert!(format!("{basic:?}").contains("ci"));
    }
}
