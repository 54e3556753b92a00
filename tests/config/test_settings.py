"""Settings: environment variables, nesting, lists, `.env`, and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Isolate each test from the developer's environment and `.env`."""
    import os

    for name in list(os.environ):
        if name.startswith("PUNCHLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_follow_the_write_up() -> None:
    settings = load_settings()
    assert settings.model.base == "google/flan-t5-large"
    assert settings.model.adapter is None
    assert settings.telegram.token is None and settings.discord.token is None
    assert settings.battles.entry_seconds == 120 and settings.battles.vote_seconds == 60


def test_nested_variables_and_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUNCHLINE_MODEL__ADAPTER", "adapters/v1")
    monkeypatch.setenv("PUNCHLINE_TELEGRAM__ADMIN_IDS", "12, 34")
    monkeypatch.setenv("PUNCHLINE_DISCORD__GUILDS", "[5, 6]")
    monkeypatch.setenv("PUNCHLINE_TELEGRAM__TOKEN", "123:abc")
    settings = load_settings()
    assert settings.model.adapter == Path("adapters/v1")
    assert settings.telegram.admin_ids == [12, 34]
    assert settings.discord.guilds == [5, 6]
    # The token is a secret: it never shows in a repr or a log line.
    assert "123:abc" not in repr(settings)
    assert settings.telegram.token.get_secret_value() == "123:abc"


def test_dotenv_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PUNCHLINE_WORKER__QUEUE_SIZE=7\nPUNCHLINE_STORAGE__PATH=from-dotenv.db\n")
    monkeypatch.setenv("PUNCHLINE_STORAGE__PATH", "from-env.db")
    settings = load_settings()
    assert settings.worker.queue_size == 7
    assert settings.storage.path == Path("from-env.db")


def test_overrides_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUNCHLINE_MODEL__BASE", "google/flan-t5-small")
    settings = load_settings(model={"base": "/models/flan"})
    assert settings.model.base == "/models/flan"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PUNCHLINE_WORKER__QUEUE_SIZE", "0", "greater than or equal to 1"),
        ("PUNCHLINE_MODEL__BACKEND", "onnx", "'ctranslate2' or 'onnxruntime'"),
        ("PUNCHLINE_TELEGRAM__ADMIN_IDS", "alice", "valid integer"),
        ("PUNCHLINE_MODEL__TEMPERATURE", "hot", "valid number"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message
    assert says in message
    assert "\n" not in message


def test_a_mistyped_or_secret_variable_never_has_its_value_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUNCHLINE_TELEGRAM__TOKNE", "123456:SECRET-value")  # a typo for TOKEN
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "PUNCHLINE_TELEGRAM__TOKNE" in str(raised.value)
    assert "SECRET-value" not in str(raised.value)
    monkeypatch.delenv("PUNCHLINE_TELEGRAM__TOKNE")
    monkeypatch.setenv("PUNCHLINE_BROKER__MAX_CONNECTIONS", "1")  # an ordinary value is shown
    with pytest.raises(SettingsError, match=r"got '1'"):
        load_settings()
    monkeypatch.delenv("PUNCHLINE_BROKER__MAX_CONNECTIONS")
    monkeypatch.setenv("PUNCHLINE_BROKER__URL", "redis://user:hunter2@host/0")
    monkeypatch.setenv("PUNCHLINE_BROKER__NAMESPACE", "no spaces allowed")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "hunter2" not in str(raised.value)


def test_the_language_check_is_on_by_default_and_one_variable_turns_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = load_settings().language
    assert defaults.check is True and defaults.allowed == ("en",)
    monkeypatch.setenv("PUNCHLINE_LANGUAGE__CHECK", "false")
    monkeypatch.setenv("PUNCHLINE_LANGUAGE__ALLOWED", "en, ES")
    language = load_settings().language
    assert language.check is False
    assert language.allowed == ("en", "es")
    monkeypatch.setenv("PUNCHLINE_LANGUAGE__ALLOWED", "english")
    with pytest.raises(SettingsError, match="PUNCHLINE_LANGUAGE__ALLOWED"):
        load_settings()
