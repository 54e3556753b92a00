-- Joke battles: rounds, entries, votes, pending secret entries and the Elo table of versions.
-- Timestamps are ISO-8601 UTC text; platform ids are text. Deadlines live here so a restarted
-- bot resumes every open round (docs/DESIGN.md, decision 8). Queries: bot/storage/battles.py, battle_entries.py, battle_results.py.

CREATE TABLE battles (
    id                 INTEGER PRIMARY KEY,
    platform           TEXT    NOT NULL,
    chat_id            TEXT    NOT NULL,
    chat_kind          TEXT    NOT NULL,
    chat_title         TEXT    NOT NULL DEFAULT '',
    starter_id         TEXT    NOT NULL,
    starter_name       TEXT    NOT NULL DEFAULT '',
    setup              TEXT    NOT NULL,
    setup_key          TEXT    NOT NULL,          -- normalised setup, for "used recently"
    source             TEXT    NOT NULL CHECK (source IN ('given', 'pool')),
    classic            TEXT,                      -- the corpus punchline, when it plays
    phase              TEXT    NOT NULL
                       CHECK (phase IN ('entry', 'voting', 'finished', 'cancelled', 'too_few')),
    created_at         TEXT    NOT NULL,
    entry_deadline     TEXT    NOT NULL,
    vote_deadline      TEXT,
    ended_at           TEXT,
    ended_by           TEXT,                      -- user id of whoever cancelled
    entry_message_id   TEXT,
    vote_message_id    TEXT,
    result_message_id  TEXT,
    total_votes        INTEGER,
    bot_outcome        TEXT    CHECK (bot_outcome IN ('people', 'bot', 'tie'))
);
-- At most one open round per chat, enforced by the database itself.
CREATE UNIQUE INDEX battles_one_open_per_chat ON battles (platform, chat_id)
    WHERE phase IN ('entry', 'voting');
CREATE INDEX battles_chat ON battles (platform, chat_id, id);
CREATE INDEX battles_open ON battles (phase) WHERE phase IN ('entry', 'voting');

CREATE TABLE battle_entries (
    id          INTEGER PRIMARY KEY,
    battle_id   INTEGER NOT NULL REFERENCES battles (id),
    kind        TEXT    NOT NULL CHECK (kind IN ('person', 'bot', 'classic')),
    user_id     TEXT,                             -- people only
    user_name   TEXT    NOT NULL DEFAULT '',
    version     TEXT,                             -- the bot's adapter version
    text        TEXT    NOT NULL,
    reply_id    INTEGER,                          -- core replies.id of a bot entry
    position    INTEGER,                          -- ballot place, set when voting opens
    votes       INTEGER,                          -- the rest is set when the round finishes
    points      INTEGER,
    won         INTEGER CHECK (won IN (0, 1)),
    identical   INTEGER CHECK (identical IN (0, 1)),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    CHECK ((kind = 'person') = (user_id IS NOT NULL)),
    CHECK ((kind = 'bot') = (version IS NOT NULL))
);
CREATE UNIQUE INDEX battle_entries_person ON battle_entries (battle_id, user_id)
    WHERE kind = 'person';
CREATE UNIQUE INDEX battle_entries_bot ON battle_entries (battle_id, version) WHERE kind = 'bot';
CREATE UNIQUE INDEX battle_entries_classic ON battle_entries (battle_id) WHERE kind = 'classic';
CREATE UNIQUE INDEX battle_entries_position ON battle_entries (battle_id, position)
    WHERE position IS NOT NULL;

-- One vote per voter and round; a changed vote replaces the row (created_at stays).
CREATE TABLE battle_votes (
    battle_id   INTEGER NOT NULL REFERENCES battles (id),
    voter_id    TEXT    NOT NULL,
    voter_name  TEXT    NOT NULL DEFAULT '',
    entry_id    INTEGER NOT NULL REFERENCES battle_entries (id),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (battle_id, voter_id)
);

-- A person who opened the private deep link: their next private message is their entry.
CREATE TABLE battle_pending_entries (
    platform    TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    battle_id   INTEGER NOT NULL REFERENCES battles (id),
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (platform, user_id)
);

CREATE TABLE battle_elo (
    version     TEXT    PRIMARY KEY,
    rating      REAL    NOT NULL,
    games       INTEGER NOT NULL DEFAULT 0,
    wins        INTEGER NOT NULL DEFAULT 0,
    draws       INTEGER NOT NULL DEFAULT 0,
    losses      INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT    NOT NULL
);
