-- The actor references a consent's provisions name, at any depth: who may see the consent
-- besides its patient. Searches filter on it in SQL, so counts and pages cover only what the
-- caller may see.
ALTER TABLE consents ADD COLUMN actors TEXT[] NOT NULL DEFAULT '{}';
UPDATE consents SET actors = ARRAY(
    SELECT DISTINCT jsonb_array_elements_text(jsonb_path_query_array(
        resource, 'lax $.provision.**.actor.reference.reference ? (@.type() == "string")'))
    ORDER BY 1
);
CREATE INDEX consents_actors_idx ON consents USING GIN (actors) WHERE NOT deleted;
