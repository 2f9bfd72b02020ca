DROP VIEW resources;
DROP INDEX consents_page_order;
DROP INDEX consents_id_text;
DROP TABLE search_index;
