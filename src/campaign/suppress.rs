//! The rules that keep a message from going out tonight: consent, unsubscribes,
//! addresses (suppressed), the frequency cap, quiet hours and the daily cap (deferred).

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

use super::address::{valid_e164, valid_email};
use super::id_hash::IdMap;
use crate::channel_rules::ChannelRules;
use crate::message::{LedgerEntry, Medium, SendState};

/// A customer's contact data, from the `customers` source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contact {
    pub email: Option<String>,
    pub phone: Option<String>,
    /// None (null) is not consent.
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
    /// Consent to a phone call (the `consent_call` column); None (null, or no such
    /// column) is no consent, like the others.
    pub consent_call: Option<bool>,
    /// The person of the team who owns this customer (the `owner` column): their calls
    /// go to them, whatever `[staff]` says.
    pub owner: Option<String>,
    /// Quiet hours are evaluated here; None = the pipeline's timezone.
    pub timezone: Option<Tz>,
    /// Whether `timezone` was the customer's own or inferred ([`super::timezone::resolve`]).
    pub timezone_source: super::timezone::TimezoneSource,
    /// For the unsubscribe link; None = derived from the plan's token secret.
    pub unsubscribe_token: Option<String>,
}

impl Contact {
    pub fn consents(&self, medium: Medium) -> bool {
        match medium {
            Medium::Email => self.consent_email == Some(true),
            Medium::Sms => self.consent_sms == Some(true),
            Medium::Call => self.consent_call == Some(true),
        }
    }

    pub fn address(&self, medium: Medium) -> Option<&str> {
        match medium {
            Medium::Email => self.email.as_deref(),
            Medium::Sms | Medium::Call => self.phone.as_deref(),
        }
        .map(str::trim)
        .filter(|a| !a.is_empty())
    }
}

/// Something that blocks a customer, an address, or both: a row of the `unsubscribes`
/// source, or a suppression winback recorded (a one-click unsubscribe, a bounce, a
/// complaint, a STOP).
#[derive(Debug, Clone, PartialEq)]
pub struct Unsubscribe {
    pub customer_id: Option<String>,
    pub address: Option<String>,
    /// None = every medium.
    pub medium: Option<Medium>,
    pub at: DateTime<Utc>,
    /// The reason recorded in `suppressed`: see [`suppression_reason`].
    pub reason: &'static str,
}

/// The reason a recorded suppression gives in `suppressed`: `unsubscribed`,
/// `hard_bounce`, `soft_bounces` or `complaint` (anything else counts as `unsubscribed`).
pub fn suppression_reason(recorded: &str) -> &'static str {
    match recorded {
        "hard_bounce" => "hard_bounce",
        "soft_bounces" => "soft_bounces",
        "complaint" => "complaint",
        _ => "unsubscribed",
    }
}

/// The reasons blocking one key, per medium (e-mail, SMS, call): the first recorded wins.
type Blocked = [Option<&'static str>; 3];

fn block(blocked: &mut Blocked, medium: Option<Medium>, reason: &'static str) {
    for (i, m) in [Medium::Email, Medium::Sms, Medium::Call]
        .into_iter()
        .enumerate()
    {
        if medium.is_none_or(|x| x == m) && blocked[i].is_none() {
            blocked[i] = Some(reason);
        }
    }
}

fn medium_index(medium: Medium) -> usize {
    match medium {
        Medium::Email => 0,
        Medium::Sms => 1,
        Medium::Call => 2,
    }
}

/// Addresses compare case-insensitively and without surrounding blanks.
fn normalise(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Unsubscribes and suppressions by customer and by address, per medium. Every one counts
/// whatever its time: a new consent comes back through `consent_*`, not here.
#[derive(Debug, Default)]
pub struct UnsubscribeIndex {
    by_customer: IdMap<String, Blocked>,
    by_address: IdMap<String, Blocked>,
}

impl UnsubscribeIndex {
    pub fn new(rows: &[Unsubscribe]) -> UnsubscribeIndex {
        let mut index = UnsubscribeIndex::default();
        for row in rows {
            if let Some(c) = &row.customer_id {
                block(
                    index.by_customer.entry(c.clone()).or_default(),
                    row.medium,
                    row.reason,
                );
            }
            if let Some(a) = &row.address {
                block(
                    index.by_address.entry(normalise(a)).or_default(),
                    row.medium,
                    row.reason,
                );
            }
        }
        index
    }

    /// Why this customer or address may not be sent to on `medium`, if anything blocks it.
    pub fn blocks(
        &self,
        customer_id: &str,
        address: Option<&str>,
        medium: Medium,
    ) -> Option<&'static str> {
        let i = medium_index(medium);
        self.by_customer
            .get(customer_id)
            .and_then(|b| b[i])
            .or_else(|| {
                if self.by_address.is_empty() {
                    return None;
                }
                address
                    .and_then(|a| self.by_address.get(&normalise(a)))
                    .and_then(|b| b[i])
            })
    }
}

pub use crate::config::campaigns::FrequencyCap;

/// States that count as a message sent (or possibly sent) for caps.
pub fn counts_as_sent(state: SendState) -> bool {
    matches!(
        state,
        SendState::Delivered | SendState::Unknown | SendState::InFlight | SendState::Planned
    )
}

impl FrequencyCap {
    /// Is a ledger row's `as_of` within the window ending at (and including) `as_of`?
    pub fn in_window(&self, row_as_of: NaiveDate, as_of: NaiveDate) -> bool {
        let start = as_of
            .checked_sub_days(Days::new(u64::from(self.days)))
            .unwrap_or(NaiveDate::MIN);
        row_as_of > start && row_as_of <= as_of
    }
}

/// Messages per channel already sent on `now`'s UTC day, from the ledger's `sent_at`.
pub fn daily_counts(ledger: &[LedgerEntry], now: DateTime<Utc>) -> IdMap<&str, u32> {
    let today = now.date_naive();
    let mut counts: IdMap<&str, u32> = IdMap::default();
    for row in ledger {
        if counts_as_sent(row.state) && row.sent_at.is_some_and(|t| t.date_naive() == today) {
            *counts.entry(row.channel.as_str()).or_default() += 1;
        }
    }
    counts
}

/// Why a contact cannot receive a message on `medium` at all (suppressed), in rule order:
/// `no_consent`, `unsubscribed` (or `hard_bounce`, `soft_bounces`, `complaint`: see
/// [`suppression_reason`]), `missing_address`, `invalid_address`. Ok = the address.
pub fn check_contact<'c>(
    customer_id: &str,
    contact: Option<&'c Contact>,
    medium: Medium,
    unsubscribes: &UnsubscribeIndex,
) -> Result<&'c str, (&'static str, Option<&'c str>)> {
    let address = contact.and_then(|c| c.address(medium));
    if !contact.is_some_and(|c| c.consents(medium)) {
        return Err(("no_consent", address));
    }
    if let Some(reason) = unsubscribes.blocks(customer_id, address, medium) {
        return Err((reason, address));
    }
    let Some(address) = address else {
        return Err(("missing_address", None));
    };
    let valid = match medium {
        Medium::Email => valid_email(address),
        Medium::Sms | Medium::Call => valid_e164(address),
    };
    if valid {
        Ok(address)
    } else {
        Err(("invalid_address", Some(address)))
    }
}

/// Is it quiet time for this channel where the customer lives?
pub fn in_quiet_hours(rules: &ChannelRules, now: DateTime<Utc>, tz: Tz) -> bool {
    rules.quiet_hours.quiet_at(now, tz)
}
