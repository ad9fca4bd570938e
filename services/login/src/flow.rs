//! The login flow's state before a person has authenticated (rule F6): a signed,
//! expiring value carried in the form, never a stash entry, so anonymous traffic (most of
//! it scrapers) costs no storage.
//!
//! `base64url(JSON) "." base64url(HMAC-SHA256(key, JSON))`. The key is shared by
//! replicas; the MAC is checked in constant time before the JSON is read.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_clock::UnixMillis;

/// A validated `/authorize` request, replayed once the person has signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    /// The site.
    pub client_id: String,
    /// Exactly as registered.
    pub redirect_uri: String,
    /// Returned to the site untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Put into the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// Requested scopes, space-separated.
    pub scope: String,
}

/// Where the person is in the flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// Asked for name and password.
    Password,
    /// Password accepted; asked for the TOTP code of this user.
    Totp {
        /// The user whose password matched.
        user_id: String,
    },
    /// A site's sign-out request arrived as a cross-site POST (which carries no
    /// `SameSite` cookies); it continues as a top-level GET that does.
    LogoutRequest {
        /// The central session the site's `id_token_hint` named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        family: Option<String>,
        /// Where to send the browser afterwards (already checked against the registry).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then: Option<String>,
        /// The site's `state`, returned with the redirect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site_state: Option<String>,
    },
    /// Asked to confirm a sign-out of this central session.
    Logout {
        /// The central session.
        sid: String,
        /// Where to send the browser afterwards (already checked against the registry).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then: Option<String>,
        /// The site's `state`, returned with the redirect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site_state: Option<String>,
    },
}

/// The signed value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// The request being answered (absent for a sign-out confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<AuthorizeRequest>,
    /// The stage.
    #[serde(flatten)]
    pub stage: Stage,
    /// The SHA-256 (base64url) of the pre-login nonce cookie of the browser this form
    /// was shown to: a form posted from any other browser is refused, so nobody can
    /// sign a victim's browser in to the attacker's account (login CSRF).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub browser: String,
    /// Expiry, Unix milliseconds.
    pub exp: u64,
}

/// Why a flow value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// Not produced by this service, or changed since.
    #[error("the sign-in form was changed or damaged")]
    Tampered,
    /// Genuine but too old; the state it carried, so the person can start again.
    #[error("the sign-in form expired")]
    Expired(Box<FlowState>),
}

/// Signs and opens flow values.
#[derive(Clone)]
pub struct FlowSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for FlowSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowSigner").finish_non_exhaustive()
    }
}

impl FlowSigner {
    /// A signer with `key`.
    pub fn new(key: [u8; 32]) -> Self {
        FlowSigner { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// A keyed tag over `parts` for `purpose` (never equal to a flow's MAC, nor to a tag
    /// of another purpose), base64url, `len` characters: for values this service must
    /// recognise as its own without storing them.
    pub fn tag(&self, purpose: &str, parts: &[&str], len: usize) -> String {
        let mut mac = self.mac();
        mac.update(b"tag\0");
        mac.update(purpose.as_bytes());
        for part in parts {
            mac.update(b"\0");
            mac.update(part.as_bytes());
        }
        let mut text = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        text.truncate(len);
        text
    }

    /// The form value for `state`.
    pub fn seal(&self, state: &FlowState) -> String {
        // Serialising this plain struct cannot fail.
        let json = serde_json::to_vec(state).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&json);
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The state in `value`, if this service signed it and it has not expired at `now`.
    pub fn open(&self, value: &str, now: UnixMillis) -> Result<FlowState, FlowError> {
        if value.len() > 8192 {
            return Err(FlowError::Tampered);
        }
        let (json, tag) = value.split_once('.').ok_or(FlowError::Tampered)?;
        let json = URL_SAFE_NO_PAD
            .decode(json)
            .map_err(|_| FlowError::Tampered)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| FlowError::Tampered)?;
        let mut mac = self.mac();
        mac.update(&json);
        mac.verify_slice(&tag).map_err(|_| FlowError::Tampered)?;
        let state: FlowState = serde_json::from_slice(&json).map_err(|_| FlowError::Tampered)?;
        if now.0 >= state.exp {
            return Err(FlowError::Expired(Box::new(state)));
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(exp: u64) -> FlowState {
        FlowState {
            request: Some(AuthorizeRequest {
                client_id: "wiki-a".into(),
                redirect_uri: "https://wiki-a.example/callback".into(),
                state: Some("s".into()),
                nonce: None,
                code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
                scope: "openid".into(),
            }),
            stage: Stage::Password,
            browser: "bound".into(),
            exp,
        }
    }

    #[test]
    fn a_sealed_flow_opens_until_it_expires() {
        let signer = FlowSigner::new([1; 32]);
        let sealed = signer.seal(&state(1_000));
        assert_eq!(signer.open(&sealed, UnixMillis(999)), Ok(state(1_000)));
        assert_eq!(
            signer.open(&sealed, UnixMillis(1_000)),
            Err(FlowError::Expired(Box::new(state(1_000))))
        );
    }

    #[test]
    fn any_changed_byte_or_another_key_is_tampering() {
        let signer = FlowSigner::new([1; 32]);
        let sealed = signer.seal(&state(1_000));
        for i in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).expect("ascii");
            if changed != sealed {
                assert!(signer.open(&changed, UnixMillis(0)).is_err(), "byte {i}");
            }
        }
        let other = FlowSigner::new([2; 32]);
        assert_eq!(other.open(&sealed, UnixMillis(0)), Err(FlowError::Tampered));
    }
}
