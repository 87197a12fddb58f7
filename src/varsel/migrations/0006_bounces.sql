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
