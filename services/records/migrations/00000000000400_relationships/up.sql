-- Memberships read from CareTeam, Group and PractitionerRole: consents naming a container reach
-- exactly its members (the access kernel's replica is loaded from these tables). Written in the
-- same transaction as the resource they are read from.

-- Every container seen, with the version of the resource its members were read from. `known`
-- is false when they cannot be known (a Group with actual = false): a deny naming it fails
-- closed. A container without a row has never been seen: unknown too.
CREATE TABLE membership_containers (
    container_ref TEXT PRIMARY KEY,
    version       BIGINT NOT NULL,
    known         BOOLEAN NOT NULL
);

-- One row per member while the container holds it.
CREATE TABLE memberships (
    container_ref    TEXT NOT NULL REFERENCES membership_containers (container_ref) ON DELETE CASCADE,
    member_ref       TEXT NOT NULL,
    period_start     TIMESTAMPTZ,
    period_end       TIMESTAMPTZ,
    -- A PractitionerRole holds its practitioner only while acting for this organisation.
    organization_ref TEXT,
    -- The resource version the row was read from (`CareTeam/ct1/_history/3`).
    source           TEXT NOT NULL
);
CREATE INDEX memberships_container ON memberships (container_ref);
CREATE INDEX memberships_member ON memberships (member_ref);
