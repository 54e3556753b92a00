"""Settings shared by every part of Punchline: one `Settings` object read from the environment."""

from config.errors import PunchlineError
from config.settings import Settings, SettingsError, load_settings

__all__ = ["PunchlineError", "Settings", "SettingsError", "load_settings"]
