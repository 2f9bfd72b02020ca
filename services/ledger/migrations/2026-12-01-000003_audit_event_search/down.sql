DROP INDEX IF EXISTS leaves_actor_practitioner_idx;
DROP INDEX IF EXISTS leaves_outcome_idx;
DROP INDEX IF EXISTS leaves_action_idx;
DROP INDEX IF EXISTS leaves_time_idx;
ALTER TABLE leaves
    DROP COLUMN actor_practitioner,
    DROP COLUMN outcome,
    DROP COLUMN action;
