-- How many of a dump's units have a municipality number that is not a 2024 one (9999, or
-- 1507 which was split): they are kept, but no selection by area can find them.

ALTER TABLE snapshots ADD COLUMN unknown_municipality INTEGER NOT NULL DEFAULT 0;
