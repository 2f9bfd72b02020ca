-- Transactional outbox: an event is written in the same transaction as the change (or access)
-- it describes, and a relay moves it to Redis. A 2xx means the event is durable here.
CREATE TABLE event_outbox (
    seq        BIGSERIAL PRIMARY KEY,
    event_id   UUID        NOT NULL UNIQUE,
    stream     TEXT        NOT NULL,
    payload    JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
