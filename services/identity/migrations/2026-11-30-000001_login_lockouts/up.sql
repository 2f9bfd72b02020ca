-- Failed logins and lockouts of accounts (users) and OAuth2 clients. Kept here, not in memory,
-- so a lockout survives a restart and holds on every replica. Only principals that exist get a
-- row, so a flood of unknown usernames cannot grow this table.

CREATE TABLE login_lockouts (
    -- 'user' (id: the user's UUID) or 'client' (id: the client_id).
    principal_kind    TEXT        NOT NULL CHECK (principal_kind IN ('user', 'client')),
    principal_id      TEXT        NOT NULL,
    -- Failures since window_started_at (reset when the window has passed, on a lockout and on
    -- a successful login).
    failures          INTEGER     NOT NULL DEFAULT 0,
    window_started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set while locked out: logins are refused, even with the right password, until then or
    -- until an administrator unlocks.
    locked_until      TIMESTAMPTZ,
    locked_at         TIMESTAMPTZ,
    PRIMARY KEY (principal_kind, principal_id)
);

CREATE INDEX login_lockouts_locked ON login_lockouts (locked_until) WHERE locked_until IS NOT NULL;
