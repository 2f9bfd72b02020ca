-- The shared engine writes the element of element composites' rows (records' migration 650);
-- Consent has no such composite, so the column stays NULL here.
ALTER TABLE search_index ADD COLUMN element INTEGER;
