DROP TABLE cosignatures;
DROP TABLE witness_state;
DROP TABLE signing_keys;
