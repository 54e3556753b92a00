"""The bot's SQLite storage: schema and migrations, typed records, and the queries by concern.

`from bot.storage import Storage` is the way in; see `bot.storage.storage` for the map.
"""

from bot.storage.connection import StorageError
from bot.storage.schema import MIGRATIONS_DIR, discover_migrations
from bot.storage.storage import Storage

__all__ = ["MIGRATIONS_DIR", "Storage", "StorageError", "discover_migrations"]
