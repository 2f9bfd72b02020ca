-- Every access event anomaly scored, once (idempotency by event id). The rows of the last
-- minutes rebuild the detector's windows after a restart.
CREATE TABLE scored_events (
    event_id    UUID             PRIMARY KEY,
    actor_id    TEXT             NOT NULL,
    patient_ref TEXT,
    time        TIMESTAMPTZ      NOT NULL,
    action      TEXT             NOT NULL,
    outcome     TEXT             NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    scored_at   TIMESTAMPTZ      NOT NULL DEFAULT now()
);
CREATE INDEX scored_events_time ON scored_events (time);

-- Alerts raised: at most one per actor per 10 minutes of event time.
CREATE TABLE alerts (
    id         UUID             PRIMARY KEY,
    event_id   UUID             NOT NULL UNIQUE REFERENCES scored_events (event_id),
    user_id    TEXT             NOT NULL,
    score      DOUBLE PRECISION NOT NULL,
    reasons    JSONB            NOT NULL,
    event_time TIMESTAMPTZ      NOT NULL,
    created_at TIMESTAMPTZ      NOT NULL DEFAULT now(),
    suspended  BOOLEAN          NOT NULL
);
CREATE INDEX alerts_user_event_time ON alerts (user_id, event_time);
CREATE INDEX alerts_created_at ON alerts (created_at);
