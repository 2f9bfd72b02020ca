ALTER TABLE export_files DROP COLUMN kind;
DROP INDEX export_jobs_expires;
ALTER TABLE export_jobs DROP COLUMN expires_at;
