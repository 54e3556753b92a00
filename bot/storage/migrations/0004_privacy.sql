-- People's control of their data (docs/DESIGN.md, decision 10).
-- A person's training choice: 'in', 'out', or NULL for PUNCHLINE_PRIVACY__TRAINING_DEFAULT.
ALTER TABLE users ADD COLUMN training TEXT CHECK (training IN ('in', 'out'));
-- Small facts about the database itself, e.g. the export's random salt.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
-- Retention purges by age: the columns it filters on.
CREATE INDEX requests_created ON requests (created_at);
CREATE INDEX users_last_seen ON users (last_seen);
