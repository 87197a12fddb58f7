-- The units' indexes, for what the queries ask and no more.
--
-- units_area also holds each unit's number and e-mail field (SQLite), so selecting a segment
-- reads the index alone instead of a table row per unit selected (the pilot's preview on a
-- national store: ~180 -> ~100 ms).
-- units_parent holds only units that have a parent (sub-units): every query asks for given
-- parents, and a dump of main units no longer builds an index of 1.2 million empty entries.
-- units_nace goes: the selection asks for code prefixes with LIKE, which this index cannot
-- answer (SQLite's LIKE ignores case, the column does not), so it was built and never read.

DROP INDEX units_area;
CREATE INDEX units_area ON units (
    municipality, has_employees, employees, bankrupt, liquidating, forced_dissolution,
    deleted_date, form, reach{area_cover}
) WHERE kind = 'enhet' AND gone_snapshot_id IS NULL;
DROP INDEX units_parent;
CREATE INDEX units_parent ON units (parent_orgnr) WHERE parent_orgnr IS NOT NULL;
DROP INDEX units_nace;
