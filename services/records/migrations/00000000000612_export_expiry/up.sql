-- Bulk Data $export retention: a finished job (and its files) answers until `expires_at`, set
-- when it finishes (RECORDS_EXPORT_RETENTION_SECONDS later); then a sweep deletes it.
ALTER TABLE export_jobs ADD COLUMN expires_at timestamptz;
-- Jobs finished before retention existed get the default retention.
UPDATE export_jobs SET expires_at = finished_at + interval '24 hours' WHERE finished_at IS NOT NULL;
CREATE INDEX export_jobs_expires ON export_jobs (expires_at) WHERE expires_at IS NOT NULL;

-- The manifest's two lists: `output` (the exported resources) and `error` (OperationOutcomes:
-- what a lenient kick-off ignored).
ALTER TABLE export_files
    ADD COLUMN kind text NOT NULL DEFAULT 'output' CHECK (kind IN ('output', 'error'));
