DROP TABLE signing_key;
DROP TABLE checkpoints;
DROP TABLE leaves;
