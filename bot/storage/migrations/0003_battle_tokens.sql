-- A random token per round names it in the private deep link (/start b_<token>), so a link
-- cannot be guessed from a round's number. Rounds from before have none (their links are stale).
ALTER TABLE battles ADD COLUMN entry_token TEXT;
CREATE UNIQUE INDEX battles_entry_token ON battles (entry_token) WHERE entry_token IS NOT NULL;
