-- Registry: imported dumps (snapshots), units and their contact addresses.

CREATE TABLE snapshots (
    id {id},
    kind TEXT NOT NULL,              -- enheter | underenheter
    source TEXT NOT NULL,            -- dump | feed
    file_name TEXT NOT NULL,
    file_path TEXT NOT NULL,         -- where the dump was read from: the archive of record
    sha256 TEXT NOT NULL,
    format TEXT NOT NULL,            -- json | csv | feed
    dump_date TEXT,
    imported_at TEXT NOT NULL,
    records INTEGER NOT NULL DEFAULT 0,
    new INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    gone INTEGER NOT NULL DEFAULT 0,
    removed INTEGER NOT NULL DEFAULT 0,   -- erased on legal grounds (Fjernet)
    skipped INTEGER NOT NULL DEFAULT 0,   -- feed entries already applied or not applicable
    rejected INTEGER NOT NULL DEFAULT 0,
    unknown_municipality INTEGER NOT NULL DEFAULT 0, -- units with a number no 2024 area has
    dump_date_guessed {bool} NOT NULL DEFAULT FALSE  -- the file's time: no --dump-date or .meta.json
);
CREATE INDEX snapshots_kind ON snapshots (kind, id);

CREATE TABLE units (
    orgnr TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- enhet | underenhet
    parent_orgnr TEXT,
    name TEXT NOT NULL,
    form TEXT NOT NULL,
    municipality TEXT,               -- business (or location) address, 2024 numbering
    postal_municipality TEXT,
    country TEXT,                    -- ISO code of the business address
    nace1 TEXT,
    nace2 TEXT,
    nace3 TEXT,
    employees INTEGER,               -- antallAnsatte; NULL when hidden (1-4) or none
    has_employees {bool} NOT NULL,   -- harRegistrertAntallAnsatte
    sector TEXT,
    bankrupt {bool} NOT NULL,
    liquidating {bool} NOT NULL,
    forced_dissolution {bool} NOT NULL,
    deleted_date TEXT,               -- slettedato / nedleggelsesdato
    maalform TEXT,
    addr_lines TEXT,                 -- address lines joined by newlines
    addr_postcode TEXT,
    addr_city TEXT,
    addr_country TEXT,
    post_lines TEXT,
    post_postcode TEXT,
    post_city TEXT,
    post_country TEXT,
    post_countrycode TEXT,
    email TEXT,                      -- as the registry has it
    phone TEXT,
    mobile TEXT,
    website TEXT,
    reach TEXT NOT NULL,             -- email | phone_only | postal_only
    record_hash {bigint} NOT NULL,
    snapshot_id {bigint} NOT NULL,   -- dump (or feed) that last set this row
    record_index {bigint},           -- position in that dump, to read the original back
    first_snapshot_id {bigint} NOT NULL,
    gone_snapshot_id {bigint},       -- the dump in which this unit no longer appeared
    updated_at TEXT NOT NULL
);
CREATE INDEX units_area ON units (
    municipality, has_employees, employees, bankrupt, liquidating, forced_dissolution,
    deleted_date, form, reach{area_cover}
) WHERE kind = 'enhet' AND gone_snapshot_id IS NULL;
CREATE INDEX units_sub_area ON units (municipality, parent_orgnr)
    WHERE kind = 'underenhet' AND gone_snapshot_id IS NULL AND deleted_date IS NULL;
CREATE INDEX units_parent ON units (parent_orgnr) WHERE parent_orgnr IS NOT NULL;
CREATE INDEX units_snapshot ON units (kind, snapshot_id);

CREATE TABLE contacts (
    orgnr TEXT NOT NULL REFERENCES units (orgnr) ON DELETE CASCADE,
    address TEXT NOT NULL,           -- normalised (A-label domain) when valid, else the raw piece
    source TEXT NOT NULL,            -- registry | manual | altinn
    usable {bool} NOT NULL,
    reason TEXT,                     -- why not usable
    domain TEXT,
    role {bool} NOT NULL,            -- post@, firmapost@ ... rather than a person's address
    personal {bool} NOT NULL,        -- belongs to a sole proprietor: personal data
    PRIMARY KEY (orgnr, source, address)
);
CREATE INDEX contacts_address ON contacts (address);

CREATE TABLE feed_state (
    kind TEXT PRIMARY KEY,           -- enheter | underenheter
    last_update_id {bigint} NOT NULL,
    updated_at TEXT NOT NULL
);

-- Units the registry removed on legal grounds (Fjernet), by number and day only: a dump made
-- before the removal must not bring them back (registry.py erases them again).
CREATE TABLE removed_units (
    orgnr TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- enheter | underenheter
    removed_on TEXT NOT NULL         -- the day of the Fjernet entry (YYYY-MM-DD, UTC)
);
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

-- The public pages: feedback, document requests and the rate limits that protect them.

CREATE TABLE feedback (
    id {id},
    at TEXT NOT NULL,
    campaign_id {bigint} REFERENCES campaigns (id) ON DELETE CASCADE,
    delivery_id {bigint} REFERENCES deliveries (id) ON DELETE SET NULL,
    usefulness INTEGER,              -- 1..5, or none given
    relevant {bool},                 -- relevant to the business; none if not answered
    channel TEXT,                    -- preferred channel: epost | brev | altinn | sms
    comment TEXT,                    -- free text, at most 2000 characters
    language TEXT NOT NULL           -- the page's language: nb | nn | en
);
CREATE INDEX feedback_campaign ON feedback (campaign_id);
CREATE INDEX feedback_delivery ON feedback (delivery_id);

CREATE TABLE document_requests (
    id {id},
    campaign_id {bigint} NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    address TEXT NOT NULL,           -- normalised e-mail address the link was sent to
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    downloaded_at TEXT               -- first download; the link stays valid until it expires
);
CREATE INDEX document_requests_address ON document_requests (address, expires_at);

CREATE TABLE rate_limits (
    scope TEXT NOT NULL,             -- what is limited, e.g. verify_ip
    key TEXT NOT NULL,               -- whom: a keyed hash of an IP or address, or '*'
    window_start {bigint} NOT NULL,  -- Unix seconds, a multiple of the window length
    hits INTEGER NOT NULL,
    expires_at {bigint} NOT NULL,    -- Unix seconds after which the row no longer counts
    PRIMARY KEY (scope, key, window_start)
);
CREATE INDEX rate_limits_expires ON rate_limits (expires_at);

-- Operators: accounts, sessions, four-eyes approvals and the hash-chained audit log.

CREATE TABLE users (
    id {id},
    name TEXT NOT NULL UNIQUE,       -- sign-in name, lower case
    role TEXT NOT NULL,              -- Role: viewer | author | approver | admin
    email TEXT,                      -- the operator's own address, for test sends
    password_hash TEXT NOT NULL,     -- argon2id, PHC string
    totp_secret TEXT NOT NULL,       -- base32; the account is usable once totp_confirmed_at is set
    totp_confirmed_at TEXT,
    totp_last_counter {bigint},      -- time step of the last accepted code: no code is used twice
    failed_attempts INTEGER NOT NULL DEFAULT 0,  -- failures since the last success
    locked_until TEXT,
    disabled_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE sessions (
    id {id},
    token_hash TEXT NOT NULL UNIQUE, -- SHA-256 of the token; the token itself is never stored
    user_id {bigint} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,        -- per session, for the console's forms
    client TEXT,                     -- what signed in (browser, IP), for the operator to see
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,      -- idle expiry counts from here
    expires_at TEXT NOT NULL,        -- absolute expiry
    revoked_at TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);

ALTER TABLE campaigns ADD COLUMN created_by TEXT;  -- the author's user name
ALTER TABLE campaigns ADD COLUMN forgotten_at TEXT;  -- contact data erased (retention)

CREATE TABLE approvals (
    id {id},
    campaign_id {bigint} NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    approved_by TEXT NOT NULL,       -- user name; never the campaign's author
    approved_at TEXT NOT NULL,
    digest TEXT NOT NULL,            -- SHA-256 over everything that shapes what recipients get
    parts TEXT NOT NULL              -- JSON: the digest of each part, to say what changed
);
CREATE INDEX approvals_campaign ON approvals (campaign_id, id);

CREATE TABLE audit_log (
    seq {bigint} PRIMARY KEY,        -- 1, 2, 3, ... without gaps
    at TEXT NOT NULL,
    actor TEXT NOT NULL,             -- user name, cli:<login> or system
    action TEXT NOT NULL,            -- audit.Action
    object TEXT,                     -- what it was done to, e.g. campaign:3 or user:kari
    detail TEXT NOT NULL,            -- canonical JSON
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL               -- SHA-256 over all the columns above
);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

-- One row: the last entry's number and hash, so that deleting entries at the end shows.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq {bigint} NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Bounce intake: every message taken in once, so the same bounce ingested twice changes nothing.

CREATE TABLE bounce_messages (
    key TEXT PRIMARY KEY,            -- mid:<Message-ID>, or sha256:<hex> of a message without one
    received_at TEXT NOT NULL,
    kind TEXT NOT NULL,              -- BounceKind
    delivery_id {bigint} REFERENCES deliveries (id) ON DELETE SET NULL,
    status TEXT,                     -- RFC 3464 status, e.g. 5.1.1
    recipient TEXT,                  -- the failed recipient the report names
    source TEXT                      -- stdin | maildir | mbox | imap
);
CREATE INDEX bounce_messages_delivery ON bounce_messages (delivery_id);

-- Sender workers on PostgreSQL: who is working, and the rate limits they share.

CREATE TABLE workers (
    id TEXT PRIMARY KEY,             -- host:pid:random, also deliveries.claimed_by
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at TEXT NOT NULL,        -- the store's clock, as every time in this table
    heartbeat_at TEXT NOT NULL,
    stopped_at TEXT,                 -- set by a graceful stop; a dead worker's heartbeat just ages
    campaign_id {bigint},            -- the campaign it is sending now
    connections INTEGER NOT NULL,
    metrics_port INTEGER,
    sent {bigint} NOT NULL DEFAULT 0,
    deferred {bigint} NOT NULL DEFAULT 0,
    failed {bigint} NOT NULL DEFAULT 0,
    in_doubt {bigint} NOT NULL DEFAULT 0,
    rate {float} NOT NULL DEFAULT 0, -- messages per second since the previous heartbeat
    leases INTEGER NOT NULL DEFAULT 0,  -- deliveries it holds claimed
    lease_renewals {bigint} NOT NULL DEFAULT 0
);

CREATE TABLE send_buckets (
    key TEXT PRIMARY KEY,            -- global | campaign:ID | domain:NAME
    rate {float} NOT NULL,           -- tokens per second
    capacity {float} NOT NULL,       -- the largest burst
    tokens {float} NOT NULL,         -- left at stamp
    stamp {float} NOT NULL           -- the store's clock, Unix seconds, when tokens was counted
);

ALTER TABLE suppressions ADD COLUMN note TEXT;  -- an operator's note on a manual entry
CREATE INDEX suppressions_newest ON suppressions (created_at DESC, kind, value);  -- newest first
