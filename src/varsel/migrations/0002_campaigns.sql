-- Campaigns, their frozen recipients, the outbox (deliveries), suppressions and events.

CREATE TABLE campaigns (
    id {id},
    name TEXT NOT NULL,
    status TEXT NOT NULL,            -- CampaignStatus
    spec TEXT NOT NULL,              -- the definition as JSON (from the TOML file)
    source_file TEXT,
    criteria TEXT NOT NULL,          -- segment criteria as JSON
    snapshot_id {bigint} NOT NULL,   -- the enheter snapshot the recipients were frozen from
    sender_address TEXT NOT NULL,
    per_unit {bool} NOT NULL,        -- one message per unit even when units share an address
    sender_pid TEXT,                 -- the process sending it now
    sender_lease_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE recipients (
    campaign_id {bigint} NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    orgnr TEXT NOT NULL,
    name TEXT NOT NULL,
    form TEXT NOT NULL,
    municipality TEXT,
    employees INTEGER,
    has_employees {bool} NOT NULL,
    nace1 TEXT,
    sector TEXT,
    language TEXT NOT NULL,          -- nb | nn | en
    reach TEXT NOT NULL,             -- email | phone_only | postal_only, when frozen
    PRIMARY KEY (campaign_id, orgnr)
);

CREATE TABLE deliveries (
    id {id},
    campaign_id {bigint} NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    channel TEXT NOT NULL,           -- email | letter | altinn
    key TEXT NOT NULL,               -- idempotency key within campaign and channel
    address TEXT NOT NULL,           -- e-mail address; the orgnr for letters and Altinn
    language TEXT NOT NULL,
    state TEXT NOT NULL,             -- DeliveryState
    code TEXT NOT NULL,              -- verification code, canonical form
    unsubscribe_token TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    claimed_by TEXT,
    lease_until TEXT,
    data_started_at TEXT,            -- the final dot may have been sent: in doubt if no reply
    sent_at TEXT,
    message_id TEXT,
    last_reply TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX deliveries_key ON deliveries (campaign_id, channel, key);
CREATE UNIQUE INDEX deliveries_code ON deliveries (code);
CREATE INDEX deliveries_state ON deliveries (campaign_id, state, next_attempt_at);

CREATE TABLE delivery_units (
    delivery_id {bigint} NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    orgnr TEXT NOT NULL,
    PRIMARY KEY (delivery_id, orgnr)
);
CREATE INDEX delivery_units_orgnr ON delivery_units (orgnr);

CREATE TABLE suppressions (
    kind TEXT NOT NULL,              -- address | unit
    value TEXT NOT NULL,             -- normalised e-mail address, or orgnr
    reason TEXT NOT NULL,            -- unsubscribed | hard_bounce | complaint | manual
    source TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);

CREATE TABLE events (
    id {id},
    at TEXT NOT NULL,
    campaign_id {bigint},
    delivery_id {bigint},
    kind TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX events_delivery ON events (delivery_id);
CREATE INDEX events_campaign ON events (campaign_id, kind);
