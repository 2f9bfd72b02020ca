-- The other access events of an alert's incident: those the alert took in late (the start of
-- a burst, the rest of a search's list) and those that alerted within the cooldown, when no
-- alert of their own was raised. What a breach notification needs: every record involved.
CREATE TABLE alert_events (
    alert_id uuid NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    event_id uuid NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, event_id)
);
