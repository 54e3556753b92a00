"""Every setting of Punchline in one pydantic-settings object.

Environment variables use the prefix ``PUNCHLINE_`` and ``__`` between levels, e.g.
``PUNCHLINE_MODEL__ADAPTER=adapters/v1`` or ``PUNCHLINE_WORKER__MAX_BATCH_SIZE=16``. A ``.env``
file in the working directory is read too. Lists accept JSON (``[1, 2]``) or commas (``1,2``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, StringConstraints, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from config.errors import PunchlineError

ENV_PREFIX = "PUNCHLINE_"
ENV_DELIMITER = "__"


def _split_list(value: Any) -> Any:
    """Let list settings be written as ``1,2,3`` as well as JSON ``[1, 2, 3]``."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


IdList = Annotated[list[int], NoDecode]
StrList = Annotated[list[str], NoDecode]
PathList = Annotated[list[Path], NoDecode]
# Language codes as the language identifier names them (en, es, zh…), in any case.
LanguageCodes = Annotated[
    tuple[
        Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[A-Za-z]{2,3}$")],
        ...,
    ],
    NoDecode,
]


class _Section(BaseModel):
    model_config = {"extra": "forbid"}


class TelegramSettings(_Section):
    """Telegram front-end (python-telegram-bot)."""

    token: SecretStr | None = None
    # A self-hosted Bot API server, or the fake one the tests run on loopback.
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    admin_ids: IdList = Field(default_factory=list)
    allowed_chats: IdList = Field(default_factory=list)  # empty: every chat
    allowed_users: IdList = Field(default_factory=list)  # empty: every user
    poll_timeout: float = Field(default=10.0, ge=0)  # getUpdates long-poll seconds
    poll_interval: float = Field(default=0.0, ge=0)  # pause between getUpdates calls
    max_retries: int = Field(default=3, ge=0)  # AIORateLimiter retries after a 429
    # HTTP timeouts of Bot API calls other than the long poll (seconds).
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=10.0, gt=0)
    # Resends of a reply after a 5xx or a dropped connection (never after a timeout, which may
    # have delivered it), waiting send_retry_delay, then twice that, ...
    send_retries: int = Field(default=2, ge=0)
    send_retry_delay: float = Field(default=1.0, ge=0)
    typing_interval: float = Field(default=4.0, gt=0)  # Telegram shows "typing" for ~5 s
    # "typing…" actions count against the bot's overall ~30 requests/s like messages do; past
    # this many a second, or while replies wait in the outbox, they are skipped (cosmetic), so
    # under load they never crowd out replies.
    typing_per_second: float = Field(default=5.0, gt=0)
    concurrent_updates: int = Field(default=64, ge=1)  # updates handled at once (one per user)
    # On shutdown: how long running handlers, then queued replies, may take before they are
    # dropped (logged), so SIGTERM always ends the process.
    stop_timeout_s: float = Field(default=10.0, gt=0)

    _lists = field_validator("admin_ids", "allowed_chats", "allowed_users", mode="before")(_split_list)


class DiscordSettings(_Section):
    """Discord front-end (discord.py)."""

    token: SecretStr | None = None
    guilds: IdList = Field(default_factory=list)  # slash commands sync here at once; empty: global
    admin_ids: IdList = Field(default_factory=list)
    allowed_channels: IdList = Field(default_factory=list)
    allowed_users: IdList = Field(default_factory=list)
    message_content_intent: bool = False  # privileged; mentions, replies and DMs work without it
    # Sync slash commands at start-up (guilds: at once; global: up to an hour). Turn off once
    # synced to save API calls on every restart.
    sync_commands: bool = True

    _lists = field_validator("guilds", "admin_ids", "allowed_channels", "allowed_users", mode="before")(
        _split_list
    )


class ModelSettings(_Section):
    """The model and how it generates."""

    base: str = "google/flan-t5-large"  # hub id or local directory
    adapter: Path | None = None  # adapter directory written by `punchline train`
    # More adapter directories served beside the current one (battles between versions); each
    # is a full model copy in memory (CTranslate2 int8: ~0.8 GB for flan-t5-large).
    extra_adapters: PathList = Field(default_factory=list)
    # auto: transformers bf16 on a GPU; on CPU onnxruntime, else ctranslate2, else transformers
    # (the fastest first, as bench/inference.py measured them; each falls back to the next).
    backend: Literal["auto", "transformers", "ctranslate2", "onnxruntime"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "int8"] = "auto"
    # Converted CTranslate2 and exported ONNX models, by adapter version.
    cache_dir: Path = Path(".punchline/cache")
    max_new_tokens: int = Field(default=32, ge=1, le=512)
    # At least this many new tokens (0: none). Benchmarks force a fixed length with it.
    min_new_tokens: int = Field(default=0, ge=0, le=512)
    do_sample: bool = True
    temperature: float = Field(default=0.9, gt=0, le=5)
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=50, ge=0)
    repetition_penalty: float = Field(default=1.2, ge=1)
    no_repeat_ngram_size: int = Field(default=3, ge=0)
    candidates: int = Field(default=4, ge=1, le=16)  # generated per reply, best one is sent
    max_setup_chars: int = Field(default=300, ge=10)

    _lists = field_validator("extra_adapters", mode="before")(_split_list)


class WorkerSettings(_Section):
    """The in-process inference worker: a bounded queue in front of a micro-batcher."""

    queue_size: int = Field(default=64, ge=1)
    # Requests decoded together (each with ModelSettings.candidates sequences). 32 keeps a full
    # batch under ~2 s on 2 CPU cores with ONNX Runtime int8, ~3 s with CTranslate2 (bench/inference.py).
    max_batch_size: int = Field(default=32, ge=1)
    timeout_s: float = Field(default=30.0, gt=0)  # a request's deadline
    threads: int = Field(default=0, ge=0)  # intra-op threads (torch, CTranslate2, ONNX Runtime); 0: all cores
    stats_log_s: float = Field(default=60.0, ge=0)  # log the worker's counters this often; 0: never
    # On close, the batch being decoded may finish for this long; then its requests are
    # answered "busy" and the worker stops without it, so SIGTERM always ends the process.
    close_timeout_s: float = Field(default=10.0, gt=0)


class BrokerSettings(_Section):
    """Redis between bot processes and `punchline worker` processes (docs/DESIGN.md, decision 9).

    Unset `url`: the in-process worker serves, as on one machine.
    """

    # redis://host:port/db, rediss://host:port/db (TLS) or unix:///path/to/redis.sock
    url: SecretStr | None = None
    # Every key starts with "{namespace}:", one Redis Cluster hash tag for all of them, so the
    # multi-key scripts stay valid on a cluster; two deployments on one Redis use two namespaces.
    namespace: str = Field(default="punchline", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    # Requests waiting (or being generated) per adapter version before new ones get "busy" at
    # once. A few batches' worth: beyond that the wait alone would outlast most deadlines.
    max_waiting: int = Field(default=256, ge=1)
    # Workers refresh their heartbeat this often; one that misses `worker_ttl_s` is dead and its
    # requests are claimed by a live worker. The TTL spans several beats so one slow beat is
    # not a death.
    heartbeat_s: float = Field(default=1.0, gt=0)
    worker_ttl_s: float = Field(default=5.0, gt=0)
    # A request delivered this many times (its workers kept dying on it) is answered "failed"
    # and copied to the dead-letter stream instead of killing a fourth worker.
    max_deliveries: int = Field(default=3, ge=1)
    # How long `punchline reload` and /reload wait for every live worker to answer.
    reload_timeout_s: float = Field(default=120.0, gt=0)
    # Workers re-read the desired adapter set this often, in case they missed a notification.
    resync_s: float = Field(default=10.0, gt=0)
    # Calls to Redis give up after this long, so a dead broker costs a request this much at most.
    op_timeout_s: float = Field(default=2.0, gt=0)
    # Connections per client; a burst of calls queues for them (pipelining the commands).
    max_connections: int = Field(default=32, ge=2)
    # The Telegram poller's lease: another `punchline serve` with the same token takes over within
    # about this long after the poller dies.
    poll_lease_s: float = Field(default=5.0, gt=0)


class MetricsSettings(_Section):
    """`/metrics` (Prometheus) and `/healthz` of `punchline serve` and `punchline worker`."""

    port: int = Field(default=0, ge=0, le=65535)  # 0: off
    host: str = "127.0.0.1"  # 0.0.0.0 to let a Prometheus on another host scrape it


class StorageSettings(_Section):
    """SQLite storage."""

    path: Path = Path("punchline.db")
    # SQLite's `synchronous` in WAL mode. NORMAL: a killed process (kill -9, OOM, crash) loses
    # nothing committed; a power cut or OS crash may lose the last transactions. FULL: those
    # survive too, for one fsync per commit (slower writes).
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"


class RatingSettings(_Section):
    """Which reaction emoji mean what (docs/DESIGN.md, decision 3). Anything else is ignored."""

    funny: StrList = Field(default_factory=lambda: ["🤣", "😂", "😁", "🔥", "💯", "👍", "❤", "❤️"])
    not_funny: StrList = Field(default_factory=lambda: ["😐", "🥱", "👎", "🤨", "😴"])
    inappropriate: StrList = Field(default_factory=lambda: ["🤮", "💩", "😡", "🤬"])

    _lists = field_validator("funny", "not_funny", "inappropriate", mode="before")(_split_list)


class LimitSettings(_Section):
    """Limits: per person a token bucket plus one request in flight; per chat a bucket too,
    so one busy group cannot take every answer (Telegram lets a bot send a group about 20
    messages a minute anyway)."""

    burst: int = Field(default=5, ge=1)
    per_minute: float = Field(default=10.0, gt=0)
    chat_burst: int = Field(default=10, ge=1)
    chat_per_minute: float = Field(default=20.0, gt=0)
    max_message_chars: int = Field(default=300, ge=10)


class InlineSettings(_Section):
    """Telegram inline mode (`@bot <setup>` in any chat): its own limits and share of the
    worker, so typing inline never starves the chats' replies."""

    # Telegram sends a query on nearly every keystroke: answer once the person paused this long.
    debounce_s: float = Field(default=0.6, ge=0)
    results: int = Field(default=3, ge=1, le=10)  # punchlines offered to pick from
    burst: int = Field(default=5, ge=1)  # inline answers a person gets at once ...
    per_minute: float = Field(default=20.0, gt=0)  # ... and per minute after that
    concurrency: int = Field(default=2, ge=1)  # inline requests the worker serves at once, at most
    # Past this Telegram no longer shows the answer: it lapses quietly.
    timeout_s: float = Field(default=8.0, gt=0)
    cache_time_s: int = Field(default=10, ge=0)  # how long Telegram may reuse an answer (per person)


class BattleSettings(_Section):
    """Joke battles in group chats."""

    setups: Path | None = None  # a data file in any supported format; its questions are the pool
    entry_seconds: float = Field(default=120.0, gt=0)
    vote_seconds: float = Field(default=60.0, gt=0)
    min_players: int = Field(default=2, ge=2)  # entries needed, the bot's included
    classic: bool = True  # the corpus punchline may play as "the classic"
    recent_setups: int = Field(default=50, ge=0)  # not repeated in a chat within this many rounds
    vote_points: int = Field(default=1000, ge=0)  # shared out by vote share each round
    win_bonus: int = Field(default=100, ge=0)
    unanimous_bonus: int = Field(default=200, ge=0)  # instead of win_bonus: every vote, 2 or more
    max_entry_chars: int = Field(default=200, ge=10)
    # Entries a round takes at most. A ballot is one message, so fewer still fit where the
    # platform's message limit says so (Discord: 2000 characters, about 6 entries of 200);
    # later entries are refused with a message saying the round is full.
    max_entries: int = Field(default=16, ge=2, le=25)
    # After a restart, a round whose deadline passed while the bot was down stays open this
    # long, so the entries and votes the platform held for the bot (sent before the deadline)
    # still count once they are read.
    resume_grace_s: float = Field(default=10.0, ge=0)
    # Adapter versions the bot fields when several are loaded (their wins feed the Elo table);
    # 1: only the current one; 0: the bot does not play.
    bot_versions: int = Field(default=2, ge=0, le=4)


class PrivacySettings(_Section):
    """What the bot keeps about people and for how long (docs/DESIGN.md, decision 10)."""

    # opt-out: everyone's setups, entries and ratings may train the next adapter unless they
    # send /optout; opt-in: nobody's do until they send /optin.
    training_default: Literal["opt-out", "opt-in"] = "opt-out"
    # Setup texts and display names older than this are purged (ratings and battle results
    # stay, anonymous); 0 keeps them forever.
    retention_days: int = Field(default=90, ge=0)
    purge_interval_s: float = Field(default=3600.0, gt=0)  # how often `serve` purges
    # Salt of the rater and chat hashes in `ratings export`; unset: a random salt kept in the
    # database, so hashes are stable across exports from one database.
    salt: SecretStr | None = None


class SafetySettings(_Section):
    """Family mode and the content filter (docs/DESIGN.md, decision 11)."""

    # groups: family mode on in groups, off in private chats; on / off: everywhere. /family
    # changes it per chat.
    family_default: Literal["groups", "on", "off"] = "groups"
    # wordlist: the built-in normalised list (no download); classifier: also the trained
    # classifier of the `punchline[safety]` extra (alt-profanity-check), above `threshold`.
    filter: Literal["wordlist", "classifier"] = "wordlist"
    threshold: float = Field(default=0.8, gt=0, lt=1)
    wordlist: Path | None = None  # a file replacing the built-in list (one term per line)
    # When every candidate of a family chat's reply was flagged, ask again this many times
    # before answering with a clean canned line.
    retries: int = Field(default=1, ge=0, le=3)


class LanguageSettings(_Section):
    """The language check: a setup clearly in a language outside `allowed` gets one line saying
    so instead of a punchline (bot/core/language.py; measured by bench/language.py)."""

    check: bool = True
    # A setup in Latin letters is refused only when the identifier gives one language outside
    # `allowed` at least `min_confidence` and the allowed ones together at most
    # `max_allowed_probability`. Measured (bench/language.py): English setups it gives to another
    # language at 0.5 or more (slang such as "wanna", names) still leave English 0.03 or more,
    # the foreign setups leave it under 0.002; on the Kaggle setups (English by the data set's
    # account) the rule refuses 0.018%, each of them German, Spanish or French text in fact.
    # Other scripts need neither condition: English is not written in them.
    min_confidence: float = Field(default=0.5, gt=0, le=1)
    max_allowed_probability: float = Field(default=0.01, ge=0, le=1)  # 1: no such condition
    # Fewer letters than this say too little to tell ("lol", "ok", emoji, numbers): never refused.
    min_letters: int = Field(default=6, ge=1)
    # Languages answered, as the identifier names them (py3langid's ISO 639 codes: en, es, zh…).
    allowed: LanguageCodes = Field(default=("en",), min_length=1)

    _lists = field_validator("allowed", mode="before")(_split_list)


class LearningSettings(_Section):
    """Challengers: adapters from `punchline refresh` served beside the current one and judged
    by battles (docs/DESIGN.md, decision 12)."""

    # Promote a challenger as soon as the Bradley-Terry rule says so; off: an admin's /promote.
    # A challenger the rule retires is retired either way.
    auto_promote: bool = False
    review_interval_s: float = Field(default=300.0, gt=0)  # how often serve loads and judges challengers
    min_games: int = Field(default=20, ge=1)  # games against the current version before any verdict
    confidence: float = Field(default=0.95, gt=0.5, lt=1)


class Settings(BaseSettings):
    """All of Punchline's configuration. Build it with `load_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    ratings: RatingSettings = Field(default_factory=RatingSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    battles: BattleSettings = Field(default_factory=BattleSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    safety: SafetySettings = Field(default_factory=SafetySettings)
    learning: LearningSettings = Field(default_factory=LearningSettings)
    inline: InlineSettings = Field(default_factory=InlineSettings)
    language: LanguageSettings = Field(default_factory=LanguageSettings)


class SettingsError(PunchlineError):
    """A setting has a value Punchline cannot use; the message names the variable."""


def env_name(location: tuple[str | int, ...]) -> str:
    """The environment variable behind a validation error's location, e.g. PUNCHLINE_MODEL__BASE."""
    parts = [str(p) for p in location if not isinstance(p, int)]
    return ENV_PREFIX + ENV_DELIMITER.join(parts).upper()


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment and `.env`; keyword overrides win (command-line flags).

    A bad value raises `SettingsError` naming the variable and what it accepts, so start-up stops
    with one clear line instead of a pydantic traceback.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = env_name(err["loc"])
            got = err.get("input")
            # A mistyped variable is often a secret under the wrong name (…__TOKNE=123:ABC): the
            # value of an unknown or secret-looking variable is never printed.
            hidden = isinstance(got, dict) or err["type"] == "extra_forbidden" or looks_secret(name)
            shown = "" if hidden else f" (got {got!r})"
            problems.append(f"{name}: {err['msg']}{shown}")
        raise SettingsError("bad setting: " + "; ".join(problems)) from None


_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "SALT", "URL", "CREDENTIAL")


def looks_secret(name: str) -> bool:
    """Whether a variable's value may be a secret (URLs too: they can carry a password)."""
    return any(word in name.upper() for word in _SECRET_WORDS)
