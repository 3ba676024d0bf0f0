-- What "removed" means (issue: the holes a hostile tester found).
--
-- A removed post its author deletes stays, for moderators only, until `purge-removed` takes
-- it: the author may not erase a moderator's action, and its evidence with it.
ALTER TABLE posts
ADD COLUMN author_deleted_at timestamptz;
