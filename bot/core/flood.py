"""`FloodGuard`: whether a setup may go to the model now, and what to say when not.

Two limits apply: each person's (a token bucket and one request in flight) and each chat's (a
bucket: one busy group must not take every answer). A refused setup is not stored, and a flood
is answered once: after the first "slow down" the guard stays quiet for that person or chat
until its limit has refilled, so a spammer cannot make the bot spam back.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.core import texts
from bot.core.limits import Admission, Decision, Limiter

PRUNE_AT = 10_000  # remembered refusals; older ones are dropped past this


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    say: str | None = None  # the refusal to send; None: stay quiet (already said)
    admission: Admission = Admission.OK


class FloodGuard:
    def __init__(self, person: Limiter, chat: Limiter, clock: Clock):
        self.person = person
        self.chat = chat
        self.clock = clock
        self._told_until: dict[str, float] = {}  # key -> monotonic instant its refusal stops

    async def admit(self, person_key: str, chat_key: str) -> Verdict:
        """Take the person's and the chat's allowance, or say why not (taking nothing). After
        `admit` said ok, always `release(person_key)`."""
        decision = await self.person.acquire(person_key)
        if not decision.ok:
            return self._refuse(person_key, decision, chat=False)
        chat_decision = await self.chat.acquire(chat_key)
        await self.chat.release(chat_key)  # a chat has no one-in-flight rule
        if not chat_decision.ok:
            await self.person.release(person_key)
            return self._refuse(chat_key, chat_decision, chat=True)
        self._told_until.pop(person_key, None)
        return Verdict(True)

    async def release(self, person_key: str) -> None:
        await self.person.release(person_key)

    def _refuse(self, key: str, decision: Decision, *, chat: bool) -> Verdict:
        now = self.clock.monotonic()
        if self._told_until.get(key, 0.0) > now:
            return Verdict(False, None, decision.admission)
        if decision.admission is Admission.IN_FLIGHT:
            line = texts.MSG_IN_FLIGHT
            quiet_for = 5.0  # a person waiting for an answer hears it once, not per message
        else:
            seconds = max(1, round(decision.retry_after))
            line = (texts.MSG_CHAT_SLOW_DOWN if chat else texts.MSG_SLOW_DOWN).format(seconds=seconds)
            quiet_for = decision.retry_after
        if len(self._told_until) > PRUNE_AT:
            self._told_until = {k: t for k, t in self._told_until.items() if t > now}
        self._told_until[key] = now + quiet_for
        return Verdict(False, line, decision.admission)
