//! Unsubscribe tokens: unforgeable, rotatable, and enough on their own for `winback
//! listen` to know whom to unsubscribe from what.
//!
//! A token is `KID.PAYLOAD.MAC`, all URL-safe:
//! - `KID`: 8 hex digits naming the secret that signed it (a hash of the secret, so no
//!   key ids need configuring, and a token names its key without revealing it);
//! - `PAYLOAD`: base64url of `customer_id`, medium and campaign, separated by U+001F;
//! - `MAC`: base64url of the first 16 bytes of HMAC-SHA256(secret, `KID.PAYLOAD`).
//!
//! New tokens are signed with the first secret; every configured secret is accepted, so a
//! secret is rotated by putting the new one first and keeping the old one until the mail
//! carrying its tokens is old enough to forget. A changed customer id, medium or campaign,
//! or another secret, fails the MAC: guessing customer ids gains nothing.
//!
//! Survey tokens (`{{ survey_token }}`, for the one-question survey link) look the same
//! and carry the same claims, but their MAC is over `survey` + NUL + `KID.PAYLOAD`: a
//! survey token never verifies as an unsubscribe token, nor the other way round, so a
//! shared survey link cannot unsubscribe anyone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::message::Medium;

/// The shortest secret accepted: 32 bytes (256 bits), HMAC-SHA256's own key size.
pub const MIN_SECRET_BYTES: usize = 32;

/// Tokens longer than this are refused before any work (a request may carry anything).
pub const MAX_TOKEN_LEN: usize = 512;

/// What the file channel and dry runs sign with when no secret is configured. Public,
/// so tokens made with it protect nothing: never used by a channel that reaches people.
const DEVELOPMENT_SECRET: &[u8] = b"winback development secret: not for real recipients!";

const SEP: char = '\u{1f}';
const MAC_BYTES: usize = 16;

/// What a token is for: its MAC says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Unsubscribe,
    Survey,
}

impl Purpose {
    /// What the MAC covers: unsubscribe tokens sign `KID.PAYLOAD` as they always did.
    fn mac_input(self, signed: &str) -> std::borrow::Cow<'_, str> {
        match self {
            Purpose::Unsubscribe => signed.into(),
            Purpose::Survey => format!("survey\0{signed}").into(),
        }
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub customer_id: String,
    pub medium: Medium,
    pub campaign: String,
}

/// A secret that cannot sign tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenKeyError {
    #[error(
        "the token secret in {env_var} is {len} bytes; at least {MIN_SECRET_BYTES} are needed (e.g. `openssl rand -hex 32`)"
    )]
    TooShort { env_var: String, len: usize },
    #[error(
        "{env_var} is not set (or empty): it must hold the secret unsubscribe tokens are signed with"
    )]
    Unset { env_var: String },
}

struct Key {
    id: String,
    secret: Vec<u8>,
}

/// The secrets tokens are signed with (the first) and accepted with (all).
pub struct TokenKeys {
    keys: Vec<Key>,
    development: bool,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("TokenKeys")
            .field("key_ids", &ids)
            .field("development", &self.development)
            .finish()
    }
}

fn key_id(secret: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(b"winback unsubscribe token key id\0");
    h.update(secret);
    hex::encode(&h.finalize()[..4])
}

fn mac(secret: &[u8], signed: &str) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(signed.as_bytes());
    m
}

impl TokenKeys {
    /// Keys from secrets, newest first. Each must be at least [`MIN_SECRET_BYTES`] long.
    pub fn new(secrets: Vec<(String, Vec<u8>)>) -> Result<TokenKeys, TokenKeyError> {
        let mut keys = Vec::with_capacity(secrets.len());
        for (env_var, secret) in secrets {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(TokenKeyError::TooShort {
                    env_var,
                    len: secret.len(),
                });
            }
            keys.push(Key {
                id: key_id(&secret),
                secret,
            });
        }
        if keys.is_empty() {
            return Ok(TokenKeys::development());
        }
        Ok(TokenKeys {
            keys,
            development: false,
        })
    }

    /// Reads the secrets from the variables named (newest first) through `env`. The
    /// newest must be set; an older one that is not (a rotation finished, or not yet
    /// started on this host) is skipped with a warning: its tokens no longer verify.
    pub fn from_env(
        env_vars: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TokenKeys, TokenKeyError> {
        let mut secrets = Vec::with_capacity(env_vars.len());
        for (i, var) in env_vars.iter().enumerate() {
            let value = env(var)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            match value {
                Some(value) => secrets.push((var.clone(), value.into_bytes())),
                None if i == 0 => {
                    return Err(TokenKeyError::Unset {
                        env_var: var.clone(),
                    });
                }
                None => tracing::warn!(
                    env_var = %var,
                    "an older unsubscribe-token secret is not set: tokens it signed are no longer accepted"
                ),
            }
        }
        TokenKeys::new(secrets)
    }

    /// The public development secret: for the file channel and dry runs only.
    pub fn development() -> TokenKeys {
        TokenKeys {
            keys: vec![Key {
                id: key_id(DEVELOPMENT_SECRET),
                secret: DEVELOPMENT_SECRET.to_vec(),
            }],
            development: true,
        }
    }

    /// Signed with the public development secret (no secret configured).
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// A token for this customer, medium and campaign, signed with the newest secret.
    pub fn issue(&self, customer_id: &str, medium: Medium, campaign: &str) -> String {
        self.issue_for(Purpose::Unsubscribe, customer_id, medium, campaign)
    }

    /// A survey token for this customer, medium and campaign (see the module's notes).
    pub fn issue_survey(&self, customer_id: &str, medium: Medium, campaign: &str) -> String {
        self.issue_for(Purpose::Survey, customer_id, medium, campaign)
    }

    /// The claims of an unsubscribe token signed by any of the secrets; None for anything
    /// else (malformed, unknown key, forged, a survey token), without saying which.
    pub fn verify(&self, token: &str) -> Option<TokenClaims> {
        self.verify_for(Purpose::Unsubscribe, token)
    }

    /// The claims of a survey token, as [`TokenKeys::verify`] for unsubscribe tokens.
    pub fn verify_survey(&self, token: &str) -> Option<TokenClaims> {
        self.verify_for(Purpose::Survey, token)
    }

    fn issue_for(
        &self,
        purpose: Purpose,
        customer_id: &str,
        medium: Medium,
        campaign: &str,
    ) -> String {
        let key = &self.keys[0];
        let payload = format!("{customer_id}{SEP}{}{SEP}{campaign}", medium.as_str());
        let signed = format!("{}.{}", key.id, URL_SAFE_NO_PAD.encode(payload));
        let tag = mac(&key.secret, &purpose.mac_input(&signed))
            .finalize()
            .into_bytes();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_BYTES]))
    }

    fn verify_for(&self, purpose: Purpose, token: &str) -> Option<TokenClaims> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let (signed, tag) = token.rsplit_once('.')?;
        let (kid, payload) = signed.split_once('.')?;
        let key = self.keys.iter().find(|k| k.id == kid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != MAC_BYTES {
            return None;
        }
        mac(&key.secret, &purpose.mac_input(signed))
            .verify_truncated_left(&tag)
            .ok()?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let mut parts = payload.split(SEP);
        let customer_id = parts.next()?.to_string();
        let medium = Medium::parse(parts.next()?)?;
        let campaign = parts.next()?.to_string();
        if parts.next().is_some() || customer_id.is_empty() {
            return None;
        }
        Some(TokenClaims {
            customer_id,
            medium,
            campaign,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secrets: &[&str]) -> TokenKeys {
        TokenKeys::new(
            secrets
                .iter()
                .map(|s| ("WINBACK_TOKEN_SECRET".to_string(), s.as_bytes().to_vec()))
                .collect(),
        )
        .unwrap()
    }

    const NEW: &str = "0123456789abcdef0123456789abcdef-new";
    const OLD: &str = "0123456789abcdef0123456789abcdef-old";

    #[test]
    fn the_newest_secret_must_be_set_an_older_one_may_be_gone() {
        let vars = ["NEW".to_string(), "OLD".to_string()];
        let only_new = |v: &str| (v == "NEW").then(|| NEW.to_string());
        let keys = TokenKeys::from_env(&vars, &only_new).unwrap();
        assert!(!keys.is_development());
        let old_token = super::tests::keys(&[OLD]).issue("c-1", Medium::Email, "w");
        assert_eq!(keys.verify(&old_token), None, "the old secret is gone");
        let only_old = |v: &str| (v == "OLD").then(|| OLD.to_string());
        assert!(matches!(
            TokenKeys::from_env(&vars, &only_old),
            Err(TokenKeyError::Unset { env_var }) if env_var == "NEW"
        ));
    }

    #[test]
    fn a_token_carries_customer_medium_and_campaign() {
        let k = keys(&[NEW]);
        let t = k.issue("c-42", Medium::Sms, "winback");
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        );
        assert_eq!(
            k.verify(&t),
            Some(TokenClaims {
                customer_id: "c-42".into(),
                medium: Medium::Sms,
                campaign: "winback".into()
            })
        );
    }

    #[test]
    fn a_survey_token_is_no_unsubscribe_token_and_back() {
        let k = keys(&[NEW]);
        let survey = k.issue_survey("c-42", Medium::Email, "winback_amends");
        let unsubscribe = k.issue("c-42", Medium::Email, "winback_amends");
        assert_ne!(survey, unsubscribe);
        assert_eq!(k.verify(&survey), None);
        assert_eq!(k.verify_survey(&unsubscribe), None);
        assert_eq!(
            k.verify_survey(&survey),
            Some(TokenClaims {
                customer_id: "c-42".into(),
                medium: Medium::Email,
                campaign: "winback_amends".into()
            })
        );
    }

    #[test]
    fn a_changed_customer_or_another_secret_is_refused() {
        let k = keys(&[NEW]);
        let t = k.issue("c-42", Medium::Email, "winback");
        let (kid, rest) = t.split_once('.').unwrap();
        let (_, tag) = rest.split_once('.').unwrap();
        let payload = URL_SAFE_NO_PAD.encode(format!("c-43{SEP}email{SEP}winback"));
        assert_eq!(k.verify(&format!("{kid}.{payload}.{tag}")), None);
        let other = keys(&["another secret of thirty-two bytes!!"]);
        assert_eq!(other.verify(&t), None);
        // The same key id with a MAC from another secret.
        let forged = other.issue("c-42", Medium::Email, "winback");
        let (_, forged_rest) = forged.split_once('.').unwrap();
        assert_eq!(k.verify(&format!("{kid}.{forged_rest}")), None);
        assert_eq!(k.verify("garbage"), None);
        assert_eq!(k.verify(&"a.".repeat(400)), None);
    }

    #[test]
    fn rotation_signs_with_the_first_and_accepts_all() {
        let before = keys(&[OLD]);
        let after = keys(&[NEW, OLD]);
        let old_token = before.issue("c-1", Medium::Email, "winback");
        assert_eq!(after.verify(&old_token).unwrap().customer_id, "c-1");
        let new_token = after.issue("c-1", Medium::Email, "winback");
        assert_ne!(new_token, old_token);
        assert_eq!(before.verify(&new_token), None);
        assert!(!after.is_development());
    }

    #[test]
    fn short_or_unset_secrets_are_refused() {
        let e = TokenKeys::new(vec![("S".into(), b"short".to_vec())]).unwrap_err();
        assert!(e.to_string().contains("5 bytes"), "{e}");
        let env = |_: &str| None;
        let e = TokenKeys::from_env(&["WINBACK_TOKEN_SECRET".into()], &env).unwrap_err();
        assert!(e.to_string().contains("WINBACK_TOKEN_SECRET"), "{e}");
        assert!(TokenKeys::from_env(&[], &env).unwrap().is_development());
        assert!(!format!("{:?}", keys(&[NEW])).contains("0123"));
    }
}
