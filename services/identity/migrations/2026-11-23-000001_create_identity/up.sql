-- Identity: organisations, users, OAuth2 clients, token signing keys and revoked tokens.

CREATE TABLE organizations (
    id         UUID        PRIMARY KEY,
    name       TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                UUID        PRIMARY KEY,
    username          TEXT        NOT NULL UNIQUE,
    -- PHC string (argon2id); the password itself is never stored.
    password_hash     TEXT        NOT NULL,
    role              TEXT        NOT NULL CHECK (role IN ('admin', 'practitioner', 'patient', 'auditor')),
    organization_id   UUID        REFERENCES organizations (id),
    department        TEXT,
    -- `Practitioner/<id>` and `Patient/<id>` FHIR references.
    practitioner_ref  TEXT,
    patient_ref       TEXT,
    suspended         BOOLEAN     NOT NULL DEFAULT false,
    suspended_reason  TEXT,
    suspended_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (role <> 'practitioner' OR (organization_id IS NOT NULL AND practitioner_ref IS NOT NULL)),
    CHECK (role <> 'patient' OR patient_ref IS NOT NULL)
);

CREATE INDEX users_suspended ON users (id) WHERE suspended;

CREATE TABLE oauth_clients (
    client_id       TEXT        PRIMARY KEY,
    -- PHC string (argon2id) of the client secret, shown once at registration.
    secret_hash     TEXT        NOT NULL,
    name            TEXT        NOT NULL,
    role            TEXT        NOT NULL CHECK (role IN ('service', 'auditor', 'practitioner')),
    organization_id UUID        REFERENCES organizations (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- ES256 (P-256) token signing keys. Exactly one is active (retired_at IS NULL); retired keys
-- stay published in the JWKS for one token lifetime so tokens signed before a rotation verify.
CREATE TABLE signing_keys (
    kid             TEXT        PRIMARY KEY,
    private_key_pem TEXT        NOT NULL,
    public_jwk      JSONB       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at      TIMESTAMPTZ
);

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE revoked_tokens (
    jti        TEXT        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
