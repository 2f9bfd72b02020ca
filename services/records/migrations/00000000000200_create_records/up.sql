-- Every version of every resource. The resource JSON (the record of truth) is encrypted with
-- AES-256-GCM: body = nonce (12 bytes) || ciphertext || tag (16 bytes), AAD = "type/id/version".
CREATE TABLE resource_versions (
    resource_type TEXT        NOT NULL,
    resource_id   TEXT        NOT NULL,
    version       BIGINT      NOT NULL,
    body          BYTEA       NOT NULL,
    deleted       BOOLEAN     NOT NULL DEFAULT false,
    last_updated  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (resource_type, resource_id, version)
);

-- The current version of each resource, with what access control needs without decrypting.
CREATE TABLE resources (
    resource_type   TEXT        NOT NULL,
    resource_id     TEXT        NOT NULL,
    version         BIGINT      NOT NULL,
    patient_ref     TEXT,
    confidentiality TEXT,
    deleted         BOOLEAN     NOT NULL DEFAULT false,
    last_updated    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (resource_type, resource_id)
);
CREATE INDEX resources_type_updated ON resources (resource_type, last_updated);
CREATE INDEX resources_patient ON resources (patient_ref);

-- Search index, rewritten for each version. NOTE: these values are plaintext (codes,
-- references, dates, normalised strings): they are what searching needs, and they are the part
-- of a record that is not encrypted at rest.
CREATE TABLE search_index (
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    param         TEXT NOT NULL,
    system        TEXT,
    value         TEXT,
    value_start   TIMESTAMPTZ,
    value_end     TIMESTAMPTZ,
    number        DOUBLE PRECISION,
    FOREIGN KEY (resource_type, resource_id) REFERENCES resources (resource_type, resource_id) ON DELETE CASCADE
);
CREATE INDEX search_index_lookup ON search_index (resource_type, param, value);
-- String parameters search by prefix (LIKE 'abc%'), which needs the pattern operator class.
CREATE INDEX search_index_prefix ON search_index (resource_type, param, value text_pattern_ops);
CREATE INDEX search_index_dates ON search_index (resource_type, param, value_start, value_end);
CREATE INDEX search_index_resource ON search_index (resource_type, resource_id);
