DROP TABLE alerts;
DROP TABLE scored_events;
