-- The detector's state, written every ANOMALY_SNAPSHOT_SECONDS in the transaction that stores
-- a batch's scores (so it holds exactly the events scored up to then): a restart loads it and
-- replays only the scores stored after it, instead of relearning baselines and calibration
-- for days. One row per consumer group (today one: the access scorer).
CREATE TABLE detector_snapshots (
    name        text        PRIMARY KEY,
    format      integer     NOT NULL,
    state       bytea       NOT NULL,
    events      bigint      NOT NULL,
    newest      timestamptz,
    taken_at    timestamptz NOT NULL DEFAULT now()
);
