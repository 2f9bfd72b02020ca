-- Alerts become FHIR DetectedIssues: what kind of alert, the incident it belongs to, the
-- plain-words explanation and the features behind it, the patient (as the ledger shows it to
-- auditors), and the security team's verdict.
ALTER TABLE alerts
    ADD COLUMN kind          TEXT        NOT NULL DEFAULT 'other',
    ADD COLUMN incident_id   UUID,
    ADD COLUMN explanation   TEXT        NOT NULL DEFAULT '',
    ADD COLUMN contributions JSONB       NOT NULL DEFAULT '[]',
    ADD COLUMN patient_ref   TEXT,
    ADD COLUMN status        TEXT        NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'acknowledged', 'dismissed')),
    ADD COLUMN updated_at    TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE alerts SET
    incident_id = id,
    updated_at = created_at,
    patient_ref = (SELECT s.patient_ref FROM scored_events s WHERE s.event_id = alerts.event_id);
ALTER TABLE alerts ALTER COLUMN incident_id SET NOT NULL;
CREATE INDEX alerts_incident ON alerts (incident_id);

-- Acknowledgements and dismissals by security staff (each also an access event on the ledger).
CREATE TABLE alert_feedback (
    id         UUID        PRIMARY KEY,
    alert_id   UUID        NOT NULL REFERENCES alerts (id),
    action     TEXT        NOT NULL CHECK (action IN ('acknowledge', 'dismiss')),
    author_id  TEXT        NOT NULL,
    note       TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX alert_feedback_alert ON alert_feedback (alert_id);

-- Legitimate relationships the detector is taught, replayed into it at start: dismissed alerts
-- (the alert's actor and patient) and care facts from records' relationships stream. A care
-- fact is replaced by the newer version of the resource it was read from (`source`).
CREATE TABLE relationships (
    id             BIGSERIAL   PRIMARY KEY,
    origin         TEXT        NOT NULL CHECK (origin IN ('dismissal', 'care')),
    -- `user`: actor is a user id (token sub); `department`: organization + department.
    actor_kind     TEXT        NOT NULL CHECK (actor_kind IN ('user', 'department')),
    actor          TEXT        NOT NULL,
    organization   TEXT,
    patient_ref    TEXT        NOT NULL,
    via            TEXT        NOT NULL,
    -- The dismissed alert's id, or the care fact's source resource (`Encounter/e1`).
    source         TEXT        NOT NULL,
    source_version BIGINT      NOT NULL DEFAULT 0,
    start_time     TIMESTAMPTZ NOT NULL,
    end_time       TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX relationships_source ON relationships (origin, source);

-- The webhook's durable queue: one row per new alert, written in the alert's transaction,
-- delivered (with retries and bounded backoff) by the webhook worker.
CREATE TABLE webhook_deliveries (
    id              UUID        PRIMARY KEY,
    alert_id        UUID        NOT NULL UNIQUE REFERENCES alerts (id),
    payload         JSONB       NOT NULL,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ,
    -- Set when the attempts ran out: kept for an operator, never retried by itself.
    failed_at       TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
