-- The FHIR view of the log (`GET /fhir/AuditEvent`) searches by action, outcome, agent and
-- date. Action, outcome and the actor's practitioner live in the payload; they become columns,
-- filled at append from the parsed event (not from the JSON in SQL: PostgreSQL's jsonb refuses
-- some JSON the ledger accepts, such as a \u0000 escape, and an append must never fail on it).
ALTER TABLE leaves
    ADD COLUMN action TEXT,
    ADD COLUMN outcome TEXT,
    ADD COLUMN actor_practitioner TEXT;

-- A field of a leaf's event JSON as text. A payload jsonb refuses falls back to the text
-- itself: the event's top-level keys are unique, and nested objects hold no key of these names.
CREATE FUNCTION ledger_leaf_field(payload TEXT, path TEXT[]) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN payload::jsonb #>> path;
EXCEPTION WHEN others THEN
    RETURN substring(payload FROM '"' || path[array_length(path, 1)] || '"\s*:\s*"([^"\\]*)"');
END
$$;

-- Backfill the leaves already logged.
UPDATE leaves SET
    action = ledger_leaf_field(payload, '{action}'),
    outcome = ledger_leaf_field(payload, '{outcome}'),
    actor_practitioner = ledger_leaf_field(payload, '{actor,practitioner}');

-- A writer that does not know the columns (a replica of the previous version during a rolling
-- upgrade) inserts without them: fill them from the payload, so its appends neither fail nor
-- escape the search.
CREATE FUNCTION ledger_fill_search_columns() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.action := ledger_leaf_field(NEW.payload, '{action}');
    NEW.outcome := ledger_leaf_field(NEW.payload, '{outcome}');
    NEW.actor_practitioner := ledger_leaf_field(NEW.payload, '{actor,practitioner}');
    RETURN NEW;
END
$$;
CREATE TRIGGER leaves_fill_search_columns BEFORE INSERT ON leaves
    FOR EACH ROW WHEN (NEW.action IS NULL OR NEW.outcome IS NULL)
    EXECUTE FUNCTION ledger_fill_search_columns();

ALTER TABLE leaves
    ALTER COLUMN action SET NOT NULL,
    ALTER COLUMN outcome SET NOT NULL;

-- Every search pages by keyset on the index; these serve each filter in index order, and
-- `date` (and `_sort=date`) by time.
CREATE INDEX leaves_time_idx ON leaves (time, idx);
CREATE INDEX leaves_action_idx ON leaves (action, idx);
CREATE INDEX leaves_outcome_idx ON leaves (outcome, idx);
CREATE INDEX leaves_actor_practitioner_idx ON leaves (actor_practitioner, idx)
    WHERE actor_practitioner IS NOT NULL;
