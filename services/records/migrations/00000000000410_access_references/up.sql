-- The literal references of each resource's current version (`facts::references_of`), for
-- consents whose `data.meaning` is `dependents` (what refers to the named resource) or
-- `related` (what the named resource refers to). Kept for every resource, in a compartment or
-- not. Written with each version; resources stored before this migration are filled at start.

-- Which version's references are recorded: a resource without a row for its current version
-- has unknown references (never read as "none").
CREATE TABLE access_reference_sets (
    resource_type TEXT   NOT NULL,
    resource_id   TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    PRIMARY KEY (resource_type, resource_id),
    FOREIGN KEY (resource_type, resource_id) REFERENCES resources (resource_type, resource_id) ON DELETE CASCADE
);

-- One row per resource referred to (`Type/id`), of the version in `version`.
CREATE TABLE access_references (
    resource_type TEXT   NOT NULL,
    resource_id   TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    target        TEXT   NOT NULL,
    PRIMARY KEY (resource_type, resource_id, target),
    FOREIGN KEY (resource_type, resource_id) REFERENCES access_reference_sets (resource_type, resource_id) ON DELETE CASCADE
);
-- `related`: what the named resource refers to is a primary key lookup; `dependents`: what
-- refers to a target.
CREATE INDEX access_references_target ON access_references (target);
