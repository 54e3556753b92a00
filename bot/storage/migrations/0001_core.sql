-- Core schema: who talked, where, what they asked, what the bot answered, how people rated it.
-- Timestamps are ISO-8601 UTC text. Platform ids are text (Telegram ints, Discord snowflakes).
-- Applied by bot/storage/schema.py inside one transaction together with PRAGMA user_version = 1.

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    platform    TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    name        TEXT    NOT NULL DEFAULT '',
    is_bot      INTEGER NOT NULL DEFAULT 0 CHECK (is_bot IN (0, 1)),
    first_seen  TEXT    NOT NULL,
    last_seen   TEXT    NOT NULL,
    UNIQUE (platform, user_id)
);

CREATE TABLE chats (
    id          INTEGER PRIMARY KEY,
    platform    TEXT    NOT NULL,
    chat_id     TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('private', 'group', 'channel')),
    title       TEXT    NOT NULL DEFAULT '',
    -- per-chat settings and flags as a JSON object, e.g. {"reaction_hint_sent": true}
    settings    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    UNIQUE (platform, chat_id)
);

-- Every addressed message that reached the core, whatever became of it.
CREATE TABLE requests (
    id           INTEGER PRIMARY KEY,
    chat_pk      INTEGER NOT NULL REFERENCES chats (id),
    user_pk      INTEGER NOT NULL REFERENCES users (id),
    message_id   TEXT,                      -- the platform's id of the incoming message
    text         TEXT    NOT NULL,          -- trimmed; capped at storage.MAX_STORED_CHARS
    text_chars   INTEGER NOT NULL,          -- length before the cap
    status       TEXT    NOT NULL DEFAULT 'received'
                 CHECK (status IN ('received', 'answered', 'refused', 'rate_limited',
                                   'busy', 'error')),
    detail       TEXT    NOT NULL DEFAULT '',
    created_at   TEXT    NOT NULL,
    finished_at  TEXT
);
CREATE INDEX requests_chat ON requests (chat_pk, created_at);

-- Generated punchlines that were sent (or are being sent): the rateable messages.
CREATE TABLE replies (
    id           INTEGER PRIMARY KEY,
    request_id   INTEGER REFERENCES requests (id),
    chat_pk      INTEGER NOT NULL REFERENCES chats (id),
    message_id   TEXT,                      -- the platform's id of the bot's message, once sent
    text         TEXT    NOT NULL,
    version      TEXT    NOT NULL,          -- adapter version that made it ("base" without one)
    score        REAL,                      -- the model's own score of the punchline
    created_at   TEXT    NOT NULL,
    sent_at      TEXT
);
CREATE UNIQUE INDEX replies_message ON replies (chat_pk, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX replies_chat ON replies (chat_pk, created_at);
CREATE INDEX replies_version ON replies (version);

-- Net rating state per (reply, user, source). source: 'reaction' (emoji set; Telegram lists
-- and Discord add/remove fold into it), 'button', 'console', 'battle'. funniness is -1/0/+1,
-- appropriateness is -1 (flagged) or 0, both folded from the emoji map at write time.
CREATE TABLE reactions (
    reply_id         INTEGER NOT NULL REFERENCES replies (id) ON DELETE CASCADE,
    user_pk          INTEGER NOT NULL REFERENCES users (id),
    source           TEXT    NOT NULL,
    emojis           TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(emojis)),
    rating           TEXT,                  -- funny / meh / inappropriate for buttons
    funniness        INTEGER NOT NULL CHECK (funniness BETWEEN -1 AND 1),
    appropriateness  INTEGER NOT NULL CHECK (appropriateness BETWEEN -1 AND 0),
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (reply_id, user_pk, source)
);

-- Anonymous reaction counts (Telegram channels): the latest count per emoji, replaced.
CREATE TABLE reaction_counts (
    reply_id         INTEGER NOT NULL REFERENCES replies (id) ON DELETE CASCADE,
    emoji            TEXT    NOT NULL,
    count            INTEGER NOT NULL CHECK (count >= 0),
    funniness        INTEGER NOT NULL CHECK (funniness BETWEEN -1 AND 1),
    appropriateness  INTEGER NOT NULL CHECK (appropriateness BETWEEN -1 AND 0),
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (reply_id, emoji)
);

-- Every rating event as it happened (the net state above is derived from these).
CREATE TABLE reaction_events (
    id          INTEGER PRIMARY KEY,
    reply_id    INTEGER NOT NULL REFERENCES replies (id) ON DELETE CASCADE,
    user_pk     INTEGER REFERENCES users (id),  -- NULL for anonymous counts
    source      TEXT    NOT NULL,
    action      TEXT    NOT NULL CHECK (action IN ('set', 'add', 'remove', 'rate', 'clear',
                                                   'counts')),
    payload     TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(payload)),
    created_at  TEXT    NOT NULL
);
CREATE INDEX reaction_events_reply ON reaction_events (reply_id);
