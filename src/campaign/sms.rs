//! SMS segment counting: a text over one segment costs two or more messages and may be
//! split badly on handsets, so `validate` warns about it before anything is sent.

/// How an SMS text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// GSM 03.38 7-bit: 160 characters in one segment, 153 per part when split.
    Gsm7,
    /// Any character outside GSM-7 (emoji, most non-Latin scripts): 70 / 67.
    Ucs2,
}

impl SmsEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "GSM-7",
            SmsEncoding::Ucs2 => "UCS-2",
        }
    }
}

/// GSM 03.38 basic character set (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (escape + one septet: two each).
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

/// The encoding and number of segments `text` needs.
pub fn sms_segments(text: &str) -> (SmsEncoding, usize) {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    if gsm {
        return (SmsEncoding::Gsm7, segments(septets, 160, 153));
    }
    // UCS-2 counts UTF-16 code units: an emoji outside the BMP takes two.
    let units = text.encode_utf16().count();
    (SmsEncoding::Ucs2, segments(units, 70, 67))
}

fn segments(units: usize, single: usize, per_part: usize) -> usize {
    if units <= single {
        1
    } else {
        units.div_ceil(per_part)
    }
}

/// Characters assumed for each `{{ field }}` when estimating an SMS length.
pub const SMS_FIELD_ESTIMATE: usize = 12;

/// The literal text of a template with each `{{ ... }}` replaced by a sample value and
/// each `{% ... %}` / `{# ... #}` removed.
pub fn estimate_rendered(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let close = match tail.as_bytes().get(1) {
            Some(b'{') => Some(("}}", true)),
            Some(b'%') => Some(("%}", false)),
            Some(b'#') => Some(("#}", false)),
            _ => None,
        };
        match close.and_then(|(c, field)| tail.find(c).map(|end| (end + 2, field))) {
            Some((end, field)) => {
                if field {
                    out.push_str(&"x".repeat(SMS_FIELD_ESTIMATE));
                }
                rest = &tail[end..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_limits() {
        assert_eq!(sms_segments(""), (SmsEncoding::Gsm7, 1));
        assert_eq!(sms_segments(&"a".repeat(160)), (SmsEncoding::Gsm7, 1));
        assert_eq!(sms_segments(&"a".repeat(161)), (SmsEncoding::Gsm7, 2));
        assert_eq!(sms_segments(&"a".repeat(306)), (SmsEncoding::Gsm7, 2));
        assert_eq!(sms_segments(&"a".repeat(307)), (SmsEncoding::Gsm7, 3));
        // The euro sign takes two septets: 80 of them fill one segment.
        assert_eq!(sms_segments(&"€".repeat(80)), (SmsEncoding::Gsm7, 1));
        assert_eq!(sms_segments(&"€".repeat(81)), (SmsEncoding::Gsm7, 2));
        assert_eq!(sms_segments("Grüße, Ñoño! £5 off"), (SmsEncoding::Gsm7, 1));
    }

    #[test]
    fn ucs2_limits() {
        assert_eq!(sms_segments(&"ł".repeat(70)), (SmsEncoding::Ucs2, 1));
        assert_eq!(sms_segments(&"ł".repeat(71)), (SmsEncoding::Ucs2, 2));
        assert_eq!(sms_segments(&"好".repeat(134)), (SmsEncoding::Ucs2, 2));
        assert_eq!(sms_segments(&"好".repeat(135)), (SmsEncoding::Ucs2, 3));
        // One emoji turns a short GSM text into UCS-2; it counts two code units.
        let text = format!("{}🙂", "a".repeat(68));
        assert_eq!(sms_segments(&text), (SmsEncoding::Ucs2, 1));
        let text = format!("{}🙂", "a".repeat(69));
        assert_eq!(sms_segments(&text), (SmsEncoding::Ucs2, 2));
    }
}
