//! Masking of personal data and secrets, so that no e-mail address, phone number or API key
//! ever reaches a log line, an error message, a manifest or a summary.
//!
//! The outbox and the send ledger hold real addresses because they must; everything an
//! operator reads goes through this module first.

use crate::message::Medium;

/// The mask put in place of anything hidden.
pub const MASK: &str = "***";

/// `carol@example.com` -> `c***@example.com`. Something that is not an address is fully masked.
pub fn email(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            let first: String = local.chars().take(1).collect();
            format!("{first}{MASK}@{domain}")
        }
        _ => MASK.to_string(),
    }
}

/// `+15551234567` -> `+1555***4567`: the country and area prefix and the last four digits.
/// Short or odd values keep at most their last two characters.
pub fn phone(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    if n >= 10 {
        let head: String = chars[..5].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}{MASK}{tail}")
    } else if n >= 4 {
        let tail: String = chars[n - 2..].iter().collect();
        format!("{MASK}{tail}")
    } else {
        MASK.to_string()
    }
}

/// Masks an address of the given medium, or guesses by its shape (`@` means e-mail).
pub fn address(medium: Option<Medium>, value: &str) -> String {
    match medium {
        Some(Medium::Email) => email(value),
        Some(Medium::Sms) => phone(value),
        None if value.contains('@') => email(value),
        None => phone(value),
    }
}

/// The masked form of an address a record may hold: what its `Debug` prints.
pub fn optional_address(medium: Option<Medium>, value: Option<&str>) -> Option<String> {
    value.map(|a| address(medium, a))
}

/// Replaces every occurrence of each address in `text` by its mask (used on provider
/// error messages, which often quote the address they refuse).
pub fn scrub_addresses<'a>(text: &str, addresses: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = text.to_string();
    for a in addresses {
        if a.len() >= 3 && out.contains(a) {
            out = out.replace(a, &address(None, a));
        }
    }
    out
}

/// Knows the secret values in use (API keys, tokens read from the environment) and
/// replaces them with `***` in any string.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    pub fn new() -> Self {
        Redactor::default()
    }

    /// Reads the named environment variables through `env` and remembers their values.
    pub fn from_env<'a>(
        names: impl IntoIterator<Item = &'a str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let mut r = Redactor::new();
        for name in names {
            if let Some(value) = env(name) {
                r.add(value);
            }
        }
        r
    }

    /// Remembers one secret value. Values shorter than 4 characters are ignored: masking
    /// them would garble ordinary text and they are no secret worth the name.
    pub fn add(&mut self, secret: impl Into<String>) {
        let s = secret.into();
        if s.len() >= 4 && !self.secrets.contains(&s) {
            self.secrets.push(s);
            // Longest first, so a secret containing another is masked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every known secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_emails() {
        assert_eq!(email("carol@example.com"), "c***@example.com");
        assert_eq!(email("x@y.org"), "x***@y.org");
        assert_eq!(email("not-an-address"), "***");
        assert_eq!(email("@example.com"), "***");
        assert_eq!(email("é@example.com"), "é***@example.com");
    }

    #[test]
    fn masks_phones() {
        assert_eq!(phone("+15551234567"), "+1555***4567");
        assert_eq!(phone("+4930123456"), "+4930***3456");
        assert_eq!(phone("12345"), "***45");
        assert_eq!(phone("12"), "***");
        assert!(!phone("+447700900123").contains("900"));
    }

    #[test]
    fn address_picks_by_medium_or_shape() {
        assert_eq!(address(Some(Medium::Email), "a@b.c"), "a***@b.c");
        assert_eq!(address(Some(Medium::Sms), "+15551234567"), "+1555***4567");
        assert_eq!(address(None, "dan@example.com"), "d***@example.com");
        assert_eq!(address(None, "+15551234567"), "+1555***4567");
    }

    #[test]
    fn scrubs_addresses_quoted_by_a_provider() {
        let msg = "The 'To' number +15551234567 is not a valid phone number.";
        let out = scrub_addresses(msg, ["+15551234567", "bob@example.com"]);
        assert_eq!(
            out,
            "The 'To' number +1555***4567 is not a valid phone number."
        );
    }

    #[test]
    fn redactor_masks_known_secrets_only() {
        let env = |name: &str| match name {
            "SG_KEY" => Some("SG.abcdef123456".to_string()),
            "SHORT" => Some("ab".to_string()),
            _ => None,
        };
        let r = Redactor::from_env(["SG_KEY", "SHORT", "MISSING"], &env);
        assert_eq!(
            r.redact("auth failed for Bearer SG.abcdef123456 (ab)"),
            "auth failed for Bearer *** (ab)"
        );
        assert!(!format!("{r:?}").contains("SG."));
    }
}
