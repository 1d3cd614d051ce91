//! The send ledger's schema migrations, appended to `state::MIGRATIONS` in this order. A
//! released entry is never edited: a change is a new migration.

/// Appended to `state::MIGRATIONS`.
pub const SENDS_MIGRATION: &str = r#"
CREATE TABLE sends (
    idempotency_key     TEXT PRIMARY KEY NOT NULL,
    campaign            TEXT NOT NULL,
    step                INTEGER NOT NULL,
    customer_id         TEXT NOT NULL,
    channel             TEXT NOT NULL,
    medium              TEXT NOT NULL CHECK (medium IN ('email', 'sms')),
    address             TEXT,
    as_of               TEXT NOT NULL,
    entry_date          TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('planned', 'in_flight', 'delivered',
                          'rejected', 'failed', 'deferred', 'suppressed', 'holdout', 'unknown')),
    reason              TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    cost                REAL NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    sent_at             TEXT
) WITHOUT ROWID;
CREATE INDEX sends_as_of ON sends (as_of);
"#;

/// What the audience said of a recipient when the decision was made: results are grouped
/// by it and compare the value predicted then with what came back.
pub const SENDS_TAGS_MIGRATION: &str = r#"
ALTER TABLE sends ADD COLUMN segment TEXT;
ALTER TABLE sends ADD COLUMN treatment TEXT;
ALTER TABLE sends ADD COLUMN value REAL;
"#;

/// What the eligibility rules would have done with a holdout customer (`Tags`), so results
/// compare the customers who would have been messaged in both arms.
pub const SENDS_WOULD_BE_MIGRATION: &str = r#"
ALTER TABLE sends ADD COLUMN would_be_suppressed TEXT;
"#;

/// The ledger rebuilt for exactly-once under lost answers: the state `not_sent` (an
/// `unknown` row the provider's answer proved was never accepted), the run that reserved a
/// row (`run_lock`, `run_holder`: recovery marks `unknown` only the rows of dead runs),
/// and when the request was reserved (`attempted_at`: reconciliation waits for the
/// provider to index it and matches the provider's records near it). SQLite cannot change
/// a CHECK in place, hence the copy.
pub const SENDS_OWNER_MIGRATION: &str = r#"
CREATE TABLE sends_v4 (
    idempotency_key     TEXT PRIMARY KEY NOT NULL,
    campaign            TEXT NOT NULL,
    step                INTEGER NOT NULL,
    customer_id         TEXT NOT NULL,
    channel             TEXT NOT NULL,
    medium              TEXT NOT NULL CHECK (medium IN ('email', 'sms')),
    address             TEXT,
    as_of               TEXT NOT NULL,
    entry_date          TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('planned', 'in_flight', 'delivered',
                          'rejected', 'failed', 'deferred', 'suppressed', 'holdout', 'unknown',
                          'not_sent')),
    reason              TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    cost                REAL NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    sent_at             TEXT,
    segment             TEXT,
    treatment           TEXT,
    value               REAL,
    run_lock            TEXT,
    run_holder          TEXT,
    attempted_at        TEXT
) WITHOUT ROWID;
INSERT INTO sends_v4 (idempotency_key, campaign, step, customer_id, channel, medium, address,
    as_of, entry_date, state, reason, attempts, provider_message_id, cost, created_at,
    updated_at, sent_at, segment, treatment, value, attempted_at)
SELECT idempotency_key, campaign, step, customer_id, channel, medium, address, as_of,
    entry_date, state, reason, attempts, provider_message_id, cost, created_at, updated_at,
    sent_at, segment, treatment, value,
    CASE WHEN state IN ('in_flight', 'unknown') THEN updated_at END
FROM sends;
DROP TABLE sends;
ALTER TABLE sends_v4 RENAME TO sends;
CREATE INDEX sends_as_of ON sends (as_of);
CREATE TABLE opt_outs (
    customer_id TEXT NOT NULL,
    medium      TEXT NOT NULL CHECK (medium IN ('email', 'sms')),
    address     TEXT,
    reason      TEXT NOT NULL,
    source      TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (customer_id, medium, source)
);
"#;

/// The medium `call` (a row of the call list). SQLite cannot change a CHECK in place,
/// hence the copy, with every column the earlier migrations gave the ledger.
pub const SENDS_CALL_MIGRATION: &str = r#"
CREATE TABLE sends_v7 (
    idempotency_key     TEXT PRIMARY KEY NOT NULL,
    campaign            TEXT NOT NULL,
    step                INTEGER NOT NULL,
    customer_id         TEXT NOT NULL,
    channel             TEXT NOT NULL,
    medium              TEXT NOT NULL CHECK (medium IN ('email', 'sms', 'call')),
    address             TEXT,
    as_of               TEXT NOT NULL,
    entry_date          TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('planned', 'in_flight', 'delivered',
                          'rejected', 'failed', 'deferred', 'suppressed', 'holdout', 'unknown',
                          'not_sent')),
    reason              TEXT,
    attempts            INTEGER NOT NULL DEFAULT 0,
    provider_message_id TEXT,
    cost                REAL NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    sent_at             TEXT,
    segment             TEXT,
    treatment           TEXT,
    value               REAL,
    run_lock            TEXT,
    run_holder          TEXT,
    attempted_at        TEXT,
    provider_status     TEXT
        CHECK (provider_status IS NULL OR provider_status IN ('delivered', 'bounced')),
    would_be_suppressed TEXT
) WITHOUT ROWID;
INSERT INTO sends_v7 (idempotency_key, campaign, step, customer_id, channel, medium, address,
    as_of, entry_date, state, reason, attempts, provider_message_id, cost, created_at,
    updated_at, sent_at, segment, treatment, value, run_lock, run_holder, attempted_at,
    provider_status, would_be_suppressed)
SELECT idempotency_key, campaign, step, customer_id, channel, medium, address, as_of,
    entry_date, state, reason, attempts, provider_message_id, cost, created_at, updated_at,
    sent_at, segment, treatment, value, run_lock, run_holder, attempted_at,
    provider_status, would_be_suppressed
FROM sends;
DROP TABLE sends;
ALTER TABLE sends_v7 RENAME TO sends;
CREATE INDEX sends_as_of ON sends (as_of);
CREATE INDEX sends_provider_message_id ON sends (provider_message_id);
"#;
