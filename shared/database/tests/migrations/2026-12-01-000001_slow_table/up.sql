-- Slow on purpose: replicas that migrated together without a lock would both create it.
SELECT pg_sleep(0.3);
CREATE TABLE migrated_once (id integer PRIMARY KEY);
INSERT INTO migrated_once VALUES (1);
