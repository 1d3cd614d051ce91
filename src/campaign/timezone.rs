//! A customer's timezone when `customers.timezone` is missing or not an IANA name: from
//! `country` (ISO 3166-1 alpha-2), else from the phone's country calling code (E.164),
//! else the pipeline's. Quiet hours are read in it, so a wrong guess texts people at night.
//!
//! A country spanning several zones gets its most populous one (the United States:
//! America/New_York; Canada: America/Toronto; Russia: Europe/Moscow; Brazil:
//! America/Sao_Paulo; Australia: Australia/Sydney; Mexico: America/Mexico_City;
//! Indonesia: Asia/Jakarta; ...): a customer elsewhere in such a country should carry their
//! own `timezone`.

use chrono_tz::Tz;
use serde::Serialize;

/// Where a contact's timezone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimezoneSource {
    /// `customers.timezone`, a valid IANA name.
    Given,
    /// Inferred from `customers.country`.
    Country,
    /// Inferred from the phone number's country calling code.
    Phone,
    /// Nothing to infer from: the pipeline's timezone.
    #[default]
    Pipeline,
}

/// ISO 3166-1 alpha-2 → IANA zone (the most populous zone of multi-zone countries).
/// Sorted by code (a test checks), searched by bisection.
const BY_COUNTRY: &[(&str, &str)] = &[
    ("AE", "Asia/Dubai"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("AT", "Europe/Vienna"),
    ("AU", "Australia/Sydney"),
    ("BD", "Asia/Dhaka"),
    ("BE", "Europe/Brussels"),
    ("BG", "Europe/Sofia"),
    ("BR", "America/Sao_Paulo"),
    ("CA", "America/Toronto"),
    ("CH", "Europe/Zurich"),
    ("CL", "America/Santiago"),
    ("CN", "Asia/Shanghai"),
    ("CO", "America/Bogota"),
    ("CZ", "Europe/Prague"),
    ("DE", "Europe/Berlin"),
    ("DK", "Europe/Copenhagen"),
    ("EE", "Europe/Tallinn"),
    ("EG", "Africa/Cairo"),
    ("ES", "Europe/Madrid"),
    ("FI", "Europe/Helsinki"),
    ("FR", "Europe/Paris"),
    ("GB", "Europe/London"),
    ("GR", "Europe/Athens"),
    ("HK", "Asia/Hong_Kong"),
    ("HR", "Europe/Zagreb"),
    ("HU", "Europe/Budapest"),
    ("ID", "Asia/Jakarta"),
    ("IE", "Europe/Dublin"),
    ("IL", "Asia/Jerusalem"),
    ("IN", "Asia/Kolkata"),
    ("IS", "Atlantic/Reykjavik"),
    ("IT", "Europe/Rome"),
    ("JP", "Asia/Tokyo"),
    ("KE", "Africa/Nairobi"),
    ("KR", "Asia/Seoul"),
    ("LT", "Europe/Vilnius"),
    ("LU", "Europe/Luxembourg"),
    ("LV", "Europe/Riga"),
    ("MA", "Africa/Casablanca"),
    ("MX", "America/Mexico_City"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("NG", "Africa/Lagos"),
    ("NL", "Europe/Amsterdam"),
    ("NO", "Europe/Oslo"),
    ("NZ", "Pacific/Auckland"),
    ("PE", "America/Lima"),
    ("PH", "Asia/Manila"),
    ("PK", "Asia/Karachi"),
    ("PL", "Europe/Warsaw"),
    ("PT", "Europe/Lisbon"),
    ("RO", "Europe/Bucharest"),
    ("RS", "Europe/Belgrade"),
    ("RU", "Europe/Moscow"),
    ("SA", "Asia/Riyadh"),
    ("SE", "Europe/Stockholm"),
    ("SG", "Asia/Singapore"),
    ("SI", "Europe/Ljubljana"),
    ("SK", "Europe/Bratislava"),
    ("TH", "Asia/Bangkok"),
    ("TR", "Europe/Istanbul"),
    ("TW", "Asia/Taipei"),
    ("UA", "Europe/Kyiv"),
    ("US", "America/New_York"),
    ("VN", "Asia/Ho_Chi_Minh"),
    ("ZA", "Africa/Johannesburg"),
];

/// E.164 country calling code → the country it belongs to (+1 is the North American
/// Numbering Plan: the United States' zone; +7 Russia's). Longest prefix wins.
const BY_CALLING_CODE: &[(&str, &str)] = &[
    ("1", "US"),
    ("7", "RU"),
    ("20", "EG"),
    ("27", "ZA"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("36", "HU"),
    ("39", "IT"),
    ("40", "RO"),
    ("41", "CH"),
    ("43", "AT"),
    ("44", "GB"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("48", "PL"),
    ("49", "DE"),
    ("51", "PE"),
    ("52", "MX"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("64", "NZ"),
    ("65", "SG"),
    ("66", "TH"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("86", "CN"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("212", "MA"),
    ("234", "NG"),
    ("254", "KE"),
    ("351", "PT"),
    ("352", "LU"),
    ("353", "IE"),
    ("354", "IS"),
    ("358", "FI"),
    ("359", "BG"),
    ("370", "LT"),
    ("371", "LV"),
    ("372", "EE"),
    ("380", "UA"),
    ("381", "RS"),
    ("385", "HR"),
    ("386", "SI"),
    ("420", "CZ"),
    ("421", "SK"),
    ("852", "HK"),
    ("880", "BD"),
    ("886", "TW"),
    ("966", "SA"),
    ("971", "AE"),
    ("972", "IL"),
];

/// The zone of an ISO 3166-1 alpha-2 code (case and blanks ignored).
pub fn of_country(code: &str) -> Option<Tz> {
    let code = code.trim().to_ascii_uppercase();
    let i = BY_COUNTRY
        .binary_search_by(|(c, _)| c.cmp(&code.as_str()))
        .ok()?;
    BY_COUNTRY[i].1.parse().ok()
}

/// The zone of an E.164 number's country calling code (`+4915...` → Europe/Berlin).
pub fn of_phone(phone: &str) -> Option<Tz> {
    let digits = phone.trim().strip_prefix('+')?;
    (1..=3).rev().find_map(|n| {
        let prefix = digits.get(..n)?;
        let (_, country) = BY_CALLING_CODE.iter().find(|(p, _)| *p == prefix)?;
        of_country(country)
    })
}

/// The contact's timezone and where it came from: `given` when it is an IANA name, else
/// inferred from `country`, else from `phone`; `(None, Pipeline)` when nothing says.
pub fn resolve(
    given: Option<&str>,
    country: Option<&str>,
    phone: Option<&str>,
) -> (Option<Tz>, TimezoneSource) {
    if let Some(tz) = given.and_then(|t| t.trim().parse::<Tz>().ok()) {
        return (Some(tz), TimezoneSource::Given);
    }
    if let Some(tz) = country.and_then(of_country) {
        return (Some(tz), TimezoneSource::Country);
    }
    if let Some(tz) = phone.and_then(of_phone) {
        return (Some(tz), TimezoneSource::Phone);
    }
    (None, TimezoneSource::Pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_every_zone_is_known() {
        assert!(BY_COUNTRY.windows(2).all(|w| w[0].0 < w[1].0));
        for (code, zone) in BY_COUNTRY {
            assert!(zone.parse::<Tz>().is_ok(), "{code} {zone}");
        }
        for (prefix, country) in BY_CALLING_CODE {
            assert!(of_country(country).is_some(), "+{prefix} {country}");
        }
    }

    #[test]
    fn mars_olympus_in_germany_is_berlin() {
        let (tz, source) = resolve(Some("Mars/Olympus"), Some("DE"), Some("+15551234567"));
        assert_eq!(tz, Some(chrono_tz::Europe::Berlin));
        assert_eq!(source, TimezoneSource::Country);
    }

    #[test]
    fn given_then_country_then_phone_then_pipeline() {
        let (tz, source) = resolve(Some("Asia/Shanghai"), Some("DE"), None);
        assert_eq!(
            (tz, source),
            (Some(chrono_tz::Asia::Shanghai), TimezoneSource::Given)
        );
        let (tz, source) = resolve(None, Some(" us "), None);
        assert_eq!(
            (tz, source),
            (Some(chrono_tz::America::New_York), TimezoneSource::Country)
        );
        // An unknown country falls through to the phone: +86 is China, +353 Ireland
        // (not +35, which is no code), +1 the NANP.
        let (tz, source) = resolve(Some(""), Some("XX"), Some("+8613812345678"));
        assert_eq!(
            (tz, source),
            (Some(chrono_tz::Asia::Shanghai), TimezoneSource::Phone)
        );
        assert_eq!(of_phone("+353861234567"), Some(chrono_tz::Europe::Dublin));
        assert_eq!(of_phone("+12125550100"), Some(chrono_tz::America::New_York));
        assert_eq!(of_phone("0049151"), None);
        assert_eq!(
            resolve(None, None, Some("+999")),
            (None, TimezoneSource::Pipeline)
        );
    }
}
