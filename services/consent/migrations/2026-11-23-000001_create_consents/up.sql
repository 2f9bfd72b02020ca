-- One row per Consent: its current version. The client's JSON (with the server's id and meta)
-- is the record of truth; patient and status are copied out of it for searches and decisions.
CREATE TABLE consents (
    id           UUID        PRIMARY KEY,
    patient      TEXT        NOT NULL,
    status       TEXT        NOT NULL,
    version_id   BIGINT      NOT NULL,
    last_updated TIMESTAMPTZ NOT NULL,
    deleted      BOOLEAN     NOT NULL DEFAULT false,
    resource     JSONB       NOT NULL
);
CREATE INDEX consents_patient_idx ON consents (patient, status) WHERE NOT deleted;

-- Every version ever written, for `_history/{vid}`. A delete is a version too (deleted = true,
-- resource = the last content), so the version after a delete is never reused.
CREATE TABLE consent_history (
    id           UUID        NOT NULL REFERENCES consents (id),
    version_id   BIGINT      NOT NULL,
    last_updated TIMESTAMPTZ NOT NULL,
    deleted      BOOLEAN     NOT NULL,
    resource     JSONB       NOT NULL,
    PRIMARY KEY (id, version_id)
);
