DROP TABLE IF EXISTS access_codings;
DROP TABLE IF EXISTS access_facts;
