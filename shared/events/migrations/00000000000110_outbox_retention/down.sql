DELETE FROM event_outbox WHERE published_at IS NOT NULL;
DROP INDEX event_outbox_published;
DROP INDEX event_outbox_unpublished;
ALTER TABLE event_outbox DROP COLUMN published_at, DROP COLUMN stream_ms, DROP COLUMN stream_seq;
