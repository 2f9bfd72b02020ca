DROP TABLE detector_snapshots;
