-- The operator's note on a suppression added by hand, kept apart from where it came from
-- (source: cli, console). Until now the note stood in source in place of cli or console; those
-- entries keep their note, and their source says only that an operator added them.

ALTER TABLE suppressions ADD COLUMN note TEXT;

UPDATE suppressions SET note = source, source = 'operator'
WHERE reason = 'manual' AND source IS NOT NULL AND source NOT IN ('cli', 'console');
