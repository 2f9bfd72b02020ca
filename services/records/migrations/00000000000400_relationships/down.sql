DROP TABLE IF EXISTS memberships;
DROP TABLE IF EXISTS membership_containers;
