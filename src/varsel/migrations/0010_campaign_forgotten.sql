-- When `varsel campaign forget` erased a finished campaign's contact data (retention): the
-- campaign and its counts stay, its addresses and free texts are gone.

ALTER TABLE campaigns ADD COLUMN forgotten_at TEXT;
