-- Covering indexes for segment selection: main units by area, sub-units by area and parent.

DROP INDEX units_select;
CREATE INDEX units_area ON units (
    municipality, has_employees, employees, bankrupt, liquidating, forced_dissolution,
    deleted_date, form, reach
) WHERE kind = 'enhet' AND gone_snapshot_id IS NULL;
CREATE INDEX units_sub_area ON units (municipality, parent_orgnr)
    WHERE kind = 'underenhet' AND gone_snapshot_id IS NULL AND deleted_date IS NULL;
