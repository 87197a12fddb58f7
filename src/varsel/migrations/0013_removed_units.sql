-- Units the registry removed on legal grounds (change type Fjernet), by number and day only:
-- a dump made before the removal (imported again to undo a wrong import, or the day's dump
-- imported after the feed) still holds the unit, and must not bring it back.

CREATE TABLE removed_units (
    orgnr TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- enheter | underenheter
    removed_on TEXT NOT NULL         -- the day of the Fjernet entry (YYYY-MM-DD, UTC)
);
