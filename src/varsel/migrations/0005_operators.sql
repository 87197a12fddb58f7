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
