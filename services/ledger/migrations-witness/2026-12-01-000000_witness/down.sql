DROP TABLE witness_key;
DROP TABLE witnessed_logs;
