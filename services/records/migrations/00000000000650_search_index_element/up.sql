-- Composites over an element (`component-code-value-quantity`: a code and a value within one
-- `Observation.component`) have index rows of their own, tagged with the element they come
-- from; the search joins their components on it. NULL for every other row. Resources written
-- before have no such rows until they are indexed again.
ALTER TABLE search_index ADD COLUMN element INTEGER;
