"""Commands that change the running bot, for its admins only: `/reload [adapter_dir]`."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bot.clock import Clock
from bot.core import texts
from bot.core.access import Access
from bot.storage import Storage
from bot.types import Platform, UserRef
from config.errors import PunchlineError
from config.settings import ModelSettings
from model.types import Generator, Reloadable

log = logging.getLogger(__name__)


_PATH = re.compile(r"""[^\s'"(),;]*[/\\][^\s'"(),;]*""")


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0].strip() if lines else ""


def without_paths(text: str) -> str:
    """`text` with every path cut to its last part: an error shown in a chat (a group, often)
    says what went wrong without telling the chat how the server's disk is laid out."""
    return _PATH.sub(lambda m: Path(m.group(0).rstrip("/\\")).name or "…", text)


RELOADED = "reload"  # the actor of version events a reload records


def serving_version(generator: Generator) -> str:
    """The version serving now (the generator's first), "unknown" if it cannot say."""
    try:
        versions = generator.versions
    except Exception:
        log.warning("the generator gave no versions", exc_info=True)
        return "unknown"
    return versions[0] if versions else "unknown"


class AdminCommands:
    """What admins may ask of the running bot."""

    def __init__(
        self, model: ModelSettings, access: Access, generator: Generator, storage: Storage, clock: Clock
    ):
        """`storage` holds the version registry: a reload is recorded there with its directory,
        so the version it made current is served again after a restart."""
        self.model = model
        self.access = access
        self.generator = generator
        self.storage = storage
        self.clock = clock

    async def reload_adapter(self, user: UserRef, adapter_dir: str | None) -> str:
        """An admin's ``/reload [adapter_dir]``: serve another adapter without a restart.

        Without a directory the configured adapter (``PUNCHLINE_MODEL__ADAPTER``) is loaded
        again, which is where ``punchline train --output DIR --force`` leaves a refreshed one.
        The generator loads it beside the serving model and swaps between batches; on failure
        the old version keeps serving. Returns the text to show. Never raises.
        """
        who = f"{user.platform.value}:{user.user_id}" + (f" ({user.name})" if user.name else "")
        if not self.access.is_admin(user):
            log.info("refused /reload from %s: not an admin", who)
            return texts.MSG_RELOAD_REFUSED
        generator = self.generator
        if not isinstance(generator, Reloadable):
            log.warning("%s asked for /reload, but the generator cannot reload", who)
            return texts.MSG_RELOAD_UNSUPPORTED
        given = (adapter_dir or "").strip()
        path = Path(given).expanduser() if given else self.model.adapter
        if path is None:
            return texts.MSG_RELOAD_NO_ADAPTER
        old = serving_version(generator)
        # The console is the owner's own terminal; every chat gets names without paths.
        shown = str if user.platform is Platform.CONSOLE else without_paths
        log.info("%s reloads the adapter from %s (serving %s)", who, path, old)
        try:
            new = await generator.reload(path)
        except PunchlineError as exc:
            # AdapterError (missing, corrupt, other base model), WorkerClosed, ...: the worker
            # kept its old version, so the admin learns why and what is still live.
            reason = _first_line(str(exc)) or type(exc).__name__
            still = serving_version(generator)
            log.info("reload of %s by %s failed: %s; still serving %s", path, who, reason, still)
            return texts.MSG_RELOAD_FAILED.format(path=shown(str(path)), reason=shown(reason), old=still)
        except Exception:
            log.exception("reload of %s by %s failed", path, who)
            return texts.MSG_RELOAD_FAILED.format(
                path=shown(str(path)), reason=texts.MSG_RELOAD_UNEXPECTED, old=serving_version(generator)
            )
        log.info("%s reloaded the adapter: now serving %s from %s (was %s)", who, new, path, old)
        await self._record(new, old, path)
        if new == old:
            return texts.MSG_RELOADED_SAME.format(new=new, path=shown(str(path)))
        return texts.MSG_RELOADED.format(new=new, old=old)

    async def _record(self, new: str, old: str, path: Path) -> None:
        """The reloaded version is current in the registry, with its directory; a failure is
        logged (the reload itself worked)."""
        versions = self.storage.versions
        try:
            now = self.clock.now()
            where = str(path.resolve())
            if not await versions.register(new, where, old if old != "unknown" else None, RELOADED, now):
                await versions.relocate(new, where, now)  # known already: it lives here now
            current = await versions.current()
            if current is None or current.version != new:
                await versions.promote(
                    new, current.version if current else None, RELOADED, f"/reload from {where}", now
                )
        except Exception:
            log.exception("could not record the reload of %s in the version registry", new)
