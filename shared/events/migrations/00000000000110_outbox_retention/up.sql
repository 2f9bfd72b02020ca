-- A published event stays until every consumer group of its stream has acknowledged it, so
-- that a Redis that loses data (restarted empty, or the last writes before a crash) is given
-- it again. stream_ms/stream_seq are the id Redis gave it (`<ms>-<seq>`).
ALTER TABLE event_outbox
    ADD COLUMN published_at TIMESTAMPTZ,
    ADD COLUMN stream_ms    BIGINT,
    ADD COLUMN stream_seq   BIGINT;
CREATE INDEX event_outbox_unpublished ON event_outbox (seq) WHERE published_at IS NULL;
CREATE INDEX event_outbox_published ON event_outbox (stream, stream_ms, stream_seq)
    WHERE published_at IS NOT NULL;
