//! How every Tessera service reads its configuration: a TOML file (optional, since every
//! key has a development default), then environment overrides named
//! `<PREFIX><SECTION>__<KEY>`, e.g. `TESSERA_STASH__STORAGE__BACKEND=redis`. Override values
//! are read as TOML (numbers, booleans, arrays) and otherwise as strings. Errors name the
//! file or variable and the key.

pub mod private;
pub mod secret;

use std::path::Path;

use serde::de::DeserializeOwned;

/// `url` with any password in it replaced by `***`, for printing a configuration.
/// Works on anything shaped `scheme://user:password@host…`, URL parser or not.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// A configuration that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file, an override or the merged result does not fit the schema.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// A stable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config.read",
            ConfigError::Invalid(_) => "config.invalid",
        }
    }
}

/// Reads `path` (if given), applies the variables of `env` that start with `prefix`, and
/// deserialises the result.
pub fn load<T: DeserializeOwned>(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
) -> Result<T, ConfigError> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?,
        None => String::new(),
    };
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| {
        let file = path.map(|p| p.display().to_string()).unwrap_or_default();
        ConfigError::Invalid(format!("{file}: {e}"))
    })?;
    for (name, raw) in env {
        if let Some(key_path) = name.strip_prefix(prefix) {
            apply_override(&mut table, key_path, &raw)
                .map_err(|e| ConfigError::Invalid(format!("{name}: {e}")))?;
        }
    }
    let merged = toml::to_string(&table).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    toml::from_str(&merged).map_err(|e| ConfigError::Invalid(e.message().trim().to_owned()))
}

fn apply_override(table: &mut toml::Table, key_path: &str, raw: &str) -> Result<(), String> {
    let keys: Vec<String> = key_path.split("__").map(|k| k.to_lowercase()).collect();
    let Some((last, parents)) = keys.split_last() else {
        return Err("no key after the prefix".into());
    };
    let mut current = table;
    for key in parents {
        let entry = current
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| format!("{key} is not a section"))?;
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_in_urls_are_hidden_and_the_rest_kept() {
        assert_eq!(
            redact_url("postgres://tessera:s3cr%40t@db.example:5432/login?sslmode=require"),
            "postgres://tessera:***@db.example:5432/login?sslmode=require"
        );
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact_url("sqlite://.tessera/login/directory.db"),
            "sqlite://.tessera/login/directory.db"
        );
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
    }
}
