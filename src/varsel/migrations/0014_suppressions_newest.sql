-- The suppression list newest first (`varsel suppress list`, the console's Sperrelisten): the
-- newest 500 read in this order from the index, instead of sorting the whole list each time
-- the page is shown (100 000 entries: SQLite ~9 ms, PostgreSQL ~14 ms, and growing with it).
-- The same order as suppression._NEWEST_FIRST, ties included.

CREATE INDEX suppressions_newest ON suppressions (created_at DESC, kind, value);
