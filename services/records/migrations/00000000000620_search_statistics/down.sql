DROP STATISTICS IF EXISTS search_index_token;
