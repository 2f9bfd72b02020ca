DROP INDEX IF EXISTS leaves_actor_practitioner_idx;
DROP INDEX IF EXISTS leaves_outcome_idx;
DROP INDEX IF EXISTS leaves_action_idx;
DROP INDEX IF EXISTS leaves_time_idx;
DROP TRIGGER IF EXISTS leaves_fill_search_columns ON leaves;
DROP FUNCTION IF EXISTS ledger_fill_search_columns();
DROP FUNCTION IF EXISTS ledger_leaf_field(TEXT, TEXT[]);
ALTER TABLE leaves
    DROP COLUMN actor_practitioner,
    DROP COLUMN outcome,
    DROP COLUMN action;
