//! Address checks run before anything is sent: a message to a malformed address is a
//! rejection (and a cost) we can predict, so it is suppressed as `invalid_address` instead.

/// Longest e-mail address SMTP accepts (RFC 5321 path limit minus the angle brackets).
const MAX_EMAIL_LEN: usize = 254;
/// Longest local part (RFC 5321).
const MAX_LOCAL_LEN: usize = 64;
/// Longest domain name (RFC 1035).
const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// A pragmatic e-mail syntax check: exactly one `@`, a non-empty local part without
/// spaces or control characters, a domain of at least two dot-separated labels made of
/// letters, digits and hyphens (not at a label's ends; non-ASCII letters allowed for
/// internationalised domains), and the RFC length limits. It does not look the domain up.
pub fn valid_email(address: &str) -> bool {
    if address.is_empty() || address.len() > MAX_EMAIL_LEN {
        return false;
    }
    let mut parts = address.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    valid_local(local) && valid_domain(domain)
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '(' | ')' | '[' | ']' | '\\'
                )
        })
}

fn valid_domain(domain: &str) -> bool {
    if domain.is_empty() || domain.len() > MAX_DOMAIN_LEN {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let tld_ok = labels
        .last()
        .is_some_and(|tld| tld.chars().count() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
    tld_ok
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// E.164: `+`, then 8 to 15 digits, the first (the country code's) not 0. No spaces,
/// dashes or brackets: numbers are normalised upstream, and anything else is invalid.
pub fn valid_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_that_are_valid() {
        for a in [
            "anna@example.com",
            "anna.b+winback@mail.example.co.uk",
            "o'brien@example.ie",
            "x@sub-domain.example.org",
            "jürgen@müller.de",
        ] {
            assert!(valid_email(a), "{a}");
        }
    }

    #[test]
    fn emails_that_are_invalid() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let long_total = format!("a@{}.com", "b".repeat(260));
        for a in [
            "",
            "anna",
            "anna@",
            "@example.com",
            "anna@example",
            "anna@@example.com",
            "an@na@example.com",
            "anna @example.com",
            "anna@exa mple.com",
            "anna@.example.com",
            "anna@example..com",
            "anna@-example.com",
            "anna@example.c",
            "anna@127.0.0.1",
            ".anna@example.com",
            "an..na@example.com",
            "anna@example.com\n",
            "<anna@example.com>",
            long_local.as_str(),
            long_total.as_str(),
        ] {
            assert!(!valid_email(a), "{a:?}");
        }
    }

    #[test]
    fn e164_numbers() {
        for n in [
            "+4915112345678",
            "+12025550123",
            "+33612345678",
            "+86138001380001",
        ] {
            assert!(valid_e164(n), "{n}");
        }
        for n in [
            "",
            "4915112345678",
            "+",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+1 202 555 0123",
            "+1-202-555-0123",
            "+1202555012a",
            "00491511234567",
        ] {
            assert!(!valid_e164(n), "{n:?}");
        }
    }
}
