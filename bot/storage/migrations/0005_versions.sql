-- Adapter versions the bot has been told about (docs/DESIGN.md, decision 12): a candidate that
-- passed the offline gate is registered as a challenger, served beside the current version and
-- fielded in battles; the Bradley-Terry rule (or an admin) promotes or retires it.
CREATE TABLE adapter_versions (
    version        TEXT PRIMARY KEY,
    path           TEXT NOT NULL,            -- the adapter directory (on the bot's machine)
    parent         TEXT,                     -- the version it was aligned from
    status         TEXT NOT NULL CHECK (status IN ('challenger', 'current', 'former', 'retired')),
    registered_at  TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
-- Every registration, promotion and retirement, with why and by whom ('auto', 'admin',
-- 'refresh'): never a person's id.
CREATE TABLE version_events (
    id        INTEGER PRIMARY KEY,
    version   TEXT NOT NULL,
    event     TEXT NOT NULL CHECK (event IN ('registered', 'promoted', 'retired', 'loaded', 'failed')),
    actor     TEXT NOT NULL,
    reason    TEXT NOT NULL DEFAULT '',
    at        TEXT NOT NULL
);
CREATE INDEX version_events_version ON version_events (version, id);
