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
