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
    rejected INTEGER NOT NULL DEFAULT 0
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
CREATE INDEX units_select ON units (
    municipality, kind, gone_snapshot_id, has_employees, employees, form, reach
);
CREATE INDEX units_parent ON units (parent_orgnr);
CREATE INDEX units_nace ON units (nace1);
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
