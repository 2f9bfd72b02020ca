DROP TABLE consent_history;
DROP TABLE consents;
