DROP INDEX IF EXISTS consents_actors_idx;
ALTER TABLE consents DROP COLUMN actors;
