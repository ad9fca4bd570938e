//! Names validated once at the edge, so no query or handler re-checks a raw string.

use std::fmt;

use crate::LoginError;

/// A user's sign-in name: 3 to 20 characters of `a-z 0-9 . _ -`, starting with a letter
/// or digit. Short because it travels in session tokens (at most 300 bytes). Compared
/// case-insensitively: it is stored lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

/// A site's client id: 3 to 20 characters of `a-z 0-9 -`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

fn check(
    field: &'static str,
    text: &str,
    allowed: impl Fn(char) -> bool,
    first: impl Fn(char) -> bool,
    what: &str,
) -> Result<(), LoginError> {
    let count = text.chars().count();
    if !(3..=20).contains(&count) {
        return Err(LoginError::invalid(
            field,
            format!("must be 3 to 20 characters, not {count}"),
        ));
    }
    if !text.chars().next().is_some_and(first) || !text.chars().all(allowed) {
        return Err(LoginError::invalid(
            field,
            format!("may only contain {what}"),
        ));
    }
    Ok(())
}

impl TryFrom<&str> for UserName {
    type Error = LoginError;

    fn try_from(text: &str) -> Result<Self, LoginError> {
        let lower = text.trim().to_lowercase();
        check(
            "user name",
            &lower,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'),
            |c| c.is_ascii_alphanumeric(),
            "letters, digits, '.', '_' and '-', starting with a letter or digit",
        )?;
        Ok(UserName(lower))
    }
}

impl TryFrom<&str> for ClientId {
    type Error = LoginError;

    fn try_from(text: &str) -> Result<Self, LoginError> {
        check(
            "site name",
            text,
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
            |c| c.is_ascii_lowercase(),
            "lowercase letters, digits and '-', starting with a letter",
        )?;
        Ok(ClientId(text.to_owned()))
    }
}

impl UserName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ClientId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
