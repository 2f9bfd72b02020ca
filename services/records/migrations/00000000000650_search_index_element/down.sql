ALTER TABLE search_index DROP COLUMN element;
