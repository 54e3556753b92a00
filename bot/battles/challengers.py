"""Challengers: adapter versions that passed the offline gate, served beside the current one,
fielded in battles against it, and promoted or retired by the Bradley–Terry rule
(`bot.battles.bradley_terry.decide`; docs/DESIGN.md, decision 12).

`punchline refresh` registers a challenger in the database (`storage.versions`); `sync()` loads
every registered challenger the generator does not serve yet (in this process, or across the
fleet through the broker), so battles field it; `review()` applies the rule: a challenger whose
upper bound falls below 0.5 is retired, one whose lower bound rises above 0.5 is promoted when
`PUNCHLINE_LEARNING__AUTO_PROMOTE` is on, else it waits for an admin's /promote. Every
promotion and retirement is recorded with its numbers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from pathlib import Path

from bot.battles import bradley_terry
from bot.battles.bradley_terry import Decision, Game, Verdict, VersionStrength
from bot.clock import Clock
from bot.storage import Storage
from bot.storage.versions import CHALLENGER, CURRENT, FORMER
from config.settings import LearningSettings
from model.adapter_meta import AdapterMetadata
from model.types import AdapterError, AdapterHost, GenerationError, Generator

log = logging.getLogger(__name__)

AUTO, ADMIN, SERVED = "auto", "admin", "served"


class Challengers:
    """The served versions' life cycle: restore the recorded current one at start, load the
    registered challengers, judge them by battles, promote or retire them (one at a time)."""

    def __init__(
        self,
        settings: LearningSettings,
        storage: Storage,
        generator: Generator,
        clock: Clock,
        configured: Path | None = None,
        rng: random.Random | None = None,
    ):
        """`configured` is the adapter the bot was started with (`PUNCHLINE_MODEL__ADAPTER`), so
        the registry can say where the first current version lives; `rng` seeds the bootstrap
        (a fixed seed by default: the same games, the same verdict)."""
        self.settings = settings
        self.configured = configured
        self.storage = storage
        self.generator = generator
        self.clock = clock
        self.rng = rng or random.Random(0)
        # One change of the served versions at a time: two promotions at once would both read
        # the same "previous" and leave one winner loaded but recorded as former.
        self._lock = asyncio.Lock()
        self._started: str | None = None  # what the generator served when restore() ran
        self._restore_pending = False

    @property
    def current(self) -> str | None:
        versions = self.generator.versions
        return versions[0] if versions else None

    async def restore(self) -> str | None:
        """At start: serve the version recorded as current when the generator came up with
        another, so a promotion (or a /reload) survives a restart; the version restored, or
        None. A version that cannot be loaded now is logged, the started one serves, and every
        `sync` tries again while nothing else changed the served version. Never raises."""
        async with self._lock:
            self._started = self.current
            return await self._restore()

    async def _restore(self) -> str | None:
        """Serve the recorded current version if another serves; `_restore_pending` says
        whether it is still wanted afterwards (it could not be loaded now)."""
        record = await self.storage.versions.current()
        host = self.generator
        self._restore_pending = False
        if (
            not isinstance(host, AdapterHost)
            or record is None
            or not record.path
            or record.version == self.current
        ):
            return None
        try:
            if record.version not in host.versions:
                loaded = await host.load_extra(Path(record.path))
                if loaded != record.version:
                    await host.unload(loaded)
                    raise AdapterError(f"{record.path} holds version {loaded}, not {record.version}")
            started = self.current
            await host.make_current(record.version)
            await self._drop(started)
        except Exception as exc:  # AdapterError, GenerationError, a broker fault: try again later
            log.warning(
                "the recorded current version %s could not be restored (%s); serving %s",
                record.version,
                exc,
                self.current,
            )
            self._restore_pending = True
            return None
        log.info("restored the recorded current version %s", record.version)
        return record.version

    async def sync(self) -> list[str]:
        """Finish a restore that failed at start (while the started version still serves),
        record the served version when the registry has none or something else changed it (a
        fleet reload), then serve every registered challenger not served yet; the challengers
        loaded now. A challenger that fails is recorded once and tried again next time; one
        failure never stops the others. Raises only what the database raises."""
        async with self._lock:
            if self._restore_pending:
                if self.current == self._started:
                    await self._restore()
                else:
                    self._restore_pending = False  # someone chose another version meanwhile
            if not self._restore_pending:
                await self._record_current()
            if not isinstance(self.generator, AdapterHost):
                return []
            loaded = []
            for record in await self.storage.versions.all():
                if record.status != CHALLENGER or record.version in self.generator.versions:
                    continue
                if await self._load_challenger(record.version, Path(record.path)):
                    loaded.append(record.version)
            return loaded

    async def _load_challenger(self, expected: str, path: Path) -> bool:
        host = self.generator
        assert isinstance(host, AdapterHost)
        try:
            version = await host.load_extra(path)
            if version != expected:
                if version not in (self.current, None):
                    await host.unload(version)
                await self._failed_once(expected, f"{path} holds version {version}")
                return False
        except Exception as exc:  # AdapterError, GenerationError, a broker fault
            await self._failed_once(expected, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return False
        await self.storage.versions.note(
            expected, "loaded", AUTO, "served beside the current version", self.clock.now()
        )
        log.info("challenger %s is served beside %s", expected, self.current)
        return True

    async def _record_current(self) -> None:
        current = self.current
        record = await self.storage.versions.current()
        if current is None or (record is not None and record.version == current):
            return
        versions = self.storage.versions
        now = self.clock.now()
        if await versions.get(current) is None:
            await versions.register(current, self._configured_path(current), None, SERVED, now)
        reason = "the version this bot serves (its configured adapter, or a reload across the fleet)"
        await versions.promote(current, record.version if record else None, SERVED, reason, now)

    def _configured_path(self, version: str) -> str:
        """The configured adapter's directory when it holds `version`, else "" (unknown)."""
        if self.configured is None:
            return ""
        try:
            meta = AdapterMetadata.load(self.configured)
        except AdapterError:
            return ""
        return str(self.configured.resolve()) if meta.version == version else ""

    async def _failed_once(self, version: str, reason: str) -> None:
        events = await self.storage.versions.events(version)
        if not events or events[-1].event != "failed" or events[-1].reason != reason:
            await self.storage.versions.note(version, "failed", AUTO, reason, self.clock.now())
        log.warning("challenger %s could not be served: %s", version, reason)

    async def games(self) -> list[Game]:
        """Every game between versions that finished rounds produced."""
        return await all_games(self.storage)

    async def standings(self) -> list[VersionStrength]:
        """Every version's strength; the bootstrap (1000 refits) runs in a thread, off the loop."""
        return await asyncio.to_thread(
            bradley_terry.strength_table,
            await self.games(),
            confidence=self.settings.confidence,
            rng=random.Random(self.rng.random()),
        )

    async def decision(self, challenger: str) -> Decision | None:
        """The rule's verdict on `challenger` against the current version (None without one)."""
        current = self.current
        if current is None or challenger == current:
            return None
        return await asyncio.to_thread(
            bradley_terry.decide,
            challenger,
            current,
            await self.games(),
            confidence=self.settings.confidence,
            min_games=self.settings.min_games,
            rng=random.Random(0),
        )

    async def review(self) -> list[Decision]:
        """Apply the rule to every challenger being served; the decisions acted on. Raises
        what the database raises; a version that cannot be switched is logged."""
        async with self._lock:
            return await self._review()

    async def _review(self) -> list[Decision]:
        acted = []
        for record in await self.storage.versions.all():
            if record.status != CHALLENGER or record.version not in self.generator.versions:
                continue
            decision = await self.decision(record.version)
            if decision is None:
                continue
            try:
                if decision.verdict is Verdict.RETIRE:
                    await self._retire(record.version, AUTO, decision.reason)
                    acted.append(decision)
                elif decision.verdict is Verdict.PROMOTE and self.settings.auto_promote:
                    await self._promote(record.version, AUTO, decision.reason)
                    acted.append(decision)
                    break  # the current version changed: the others are judged against it next time
            except GenerationError as exc:
                log.warning("could not act on challenger %s (%s): %s", record.version, decision.verdict, exc)
        return acted

    async def promote(self, version: str, actor: str, reason: str) -> str:
        """Serve `version` to everyone; the line to show. Raises `GenerationError` when it is
        not being served."""
        async with self._lock:
            return await self._promote(version, actor, reason)

    async def _promote(self, version: str, actor: str, reason: str) -> str:
        if not isinstance(self.generator, AdapterHost):
            raise GenerationError("this model cannot switch versions while it runs")
        previous = self.current
        await self.generator.make_current(version)
        await self._drop(previous)
        if await self.storage.versions.get(version) is None:
            await self.storage.versions.register(version, "", previous, actor, self.clock.now())
        await self.storage.versions.promote(version, previous, actor, reason, self.clock.now())
        log.info("promoted %s (was %s) by %s: %s", version, previous, actor, reason)
        return f"Promoted {version} (was {previous}): {reason}."

    async def _drop(self, former: str | None) -> None:
        """Stop serving the version a promotion replaced: battles then field the challengers,
        not yesterday's version (a failure only costs memory, so it is logged)."""
        if former is None or not isinstance(self.generator, AdapterHost) or former == self.current:
            return
        try:
            await self.generator.unload(former)
        except GenerationError as exc:
            log.warning("could not stop serving the former version %s: %s", former, exc)

    async def retire(self, version: str, actor: str, reason: str) -> str:
        """Stop serving a challenger and record it; the line to show. Raises
        `GenerationError` when the generator refuses (it is the current version)."""
        async with self._lock:
            return await self._retire(version, actor, reason)

    async def _retire(self, version: str, actor: str, reason: str) -> str:
        if isinstance(self.generator, AdapterHost) and version in self.generator.versions:
            await self.generator.unload(version)
        await self.storage.versions.retire(version, actor, reason, self.clock.now())
        log.info("retired %s by %s: %s", version, actor, reason)
        return f"Retired {version}: {reason}."

    async def promote_command(self, argument: str) -> str:
        """`/promote [version]` by an admin (the caller checked): without a version, where each
        challenger stands; with one, promote it now (recorded with the rule's numbers)."""
        version = argument.strip()
        challengers = [r.version for r in await self.storage.versions.all() if r.status == CHALLENGER]
        if not version:
            if not challengers:
                return "No challenger is being judged. `punchline refresh` makes one."
            lines = []
            for name in challengers:
                decision = await self.decision(name)
                lines.append(
                    f"{name}: {decision.verdict} ({decision.reason})"
                    if decision
                    else f"{name}: not served yet"
                )
            return "\n".join(lines + ["/promote <version> serves one to everyone."])
        if version not in self.generator.versions:
            return f"{version} is not being served (served: {', '.join(self.generator.versions) or 'none'})."
        decision = await self.decision(version)
        reason = (
            f"by an admin; the rule said {decision.verdict}: {decision.reason}" if decision else "by an admin"
        )
        try:
            return await self.promote(version, ADMIN, reason)
        except GenerationError as exc:
            return f"Could not promote {version}: {exc}"

    async def stats_lines(self) -> list[str]:
        """For /stats: each version's Bradley–Terry strength, interval and games, once versions
        have battled."""
        statuses = {r.version: r.status for r in await self.storage.versions.all()}
        current = self.current
        if current is not None:
            # The served version is "current" even before the registry recorded it.
            statuses = {v: FORMER if s == CURRENT else s for v, s in statuses.items()} | {current: CURRENT}
        return format_standings(await self.standings(), statuses, self.settings.confidence)


async def all_games(storage: Storage) -> list[Game]:
    """Every game between versions that finished rounds produced."""
    return [g for points in await storage.versions.round_points() for g in bradley_terry.round_games(points)]


def format_standings(
    table: list[VersionStrength], statuses: Mapping[str, str], confidence: float
) -> list[str]:
    """Lines of a strength table on the Elo scale (1000 = the anchor), each with its interval,
    games and registry status; none without games."""
    if not table:
        return []
    lines = [f"Version strength (Bradley–Terry, {confidence:.0%} interval):"]
    for row in table:
        s = row.strength
        low, high = (1000 + bradley_terry.ELO_SCALE * x for x in (s.low, s.high))
        status = statuses.get(row.version, "")
        tag = f" ({status})" if status else ""
        lines.append(f"  {row.version}: {row.rating:.0f} [{low:.0f}, {high:.0f}] in {row.games} games{tag}")
    return lines
