-- Whether a dump's date is guessed (no --dump-date, no .meta.json: the file's modification
-- time, which a copy resets), so the change feed can say why it skips entries, and a re-import
-- with --dump-date may correct it. Earlier imports are taken as not guessed: nothing known.

ALTER TABLE snapshots ADD COLUMN dump_date_guessed {bool} NOT NULL DEFAULT FALSE;
