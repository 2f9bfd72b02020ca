DROP TABLE migrated_once;
