-- Bulk Data $export: asynchronous jobs and their NDJSON parts (sealed like resource versions).
CREATE TABLE export_jobs (
    id uuid PRIMARY KEY,
    -- The token subject that kicked it off: the only one who may poll, download or delete.
    requester text NOT NULL,
    request_url text NOT NULL,
    status text NOT NULL CHECK (status IN ('in-progress', 'complete', 'failed')),
    progress text NOT NULL DEFAULT '',
    error text,
    transaction_time timestamptz NOT NULL,
    -- Moved on by the runner after every page: a job whose runner died stops moving (several
    -- records instances may run jobs; none may fail another's live one).
    heartbeat timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE export_files (
    job_id uuid NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    resource_type text NOT NULL,
    resources integer NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- The patients whose data a complete job holds: an erasure removes those jobs (their files
-- are sealed with the records key, not hers).
CREATE TABLE export_job_patients (
    job_id uuid NOT NULL REFERENCES export_jobs (id) ON DELETE CASCADE,
    patient_ref text NOT NULL,
    PRIMARY KEY (job_id, patient_ref)
);
CREATE INDEX export_job_patients_patient ON export_job_patients (patient_ref);
