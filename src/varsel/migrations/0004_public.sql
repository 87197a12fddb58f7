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
