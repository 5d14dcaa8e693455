"""Settings: env over config.toml over defaults, with clear errors."""

from __future__ import annotations

import sys

import pytest

from agentnb.config import load_settings, mask_url
from agentnb.errors import ConfigError


def test_defaults(isolated_home):
    loaded = load_settings()
    s = loaded.settings
    assert s.home == isolated_home
    assert s.url == f"duckdb:///{isolated_home / 'agentnb.duckdb'}"
    assert s.default_model == "offline"
    assert loaded.sources["default_model"] == "default"


def test_config_file_then_env(isolated_home, monkeypatch):
    (isolated_home / "config.toml").write_text('default_model = "openai:gpt-4o-mini"\nlock_timeout = 5\n')
    loaded = load_settings()
    assert loaded.settings.default_model == "openai:gpt-4o-mini"
    assert loaded.settings.lock_timeout == 5
    assert loaded.sources["default_model"].endswith("config.toml")
    monkeypatch.setenv("AGENTNB_DEFAULT_MODEL", "ollama:llama3")
    loaded = load_settings()
    assert loaded.settings.default_model == "ollama:llama3"
    assert loaded.sources["default_model"] == "env AGENTNB_DEFAULT_MODEL"
    assert loaded.sources["lock_timeout"].endswith("config.toml")


def test_database_url_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTNB_DATABASE_URL", f"sqlite:///{tmp_path}/x.db")
    assert load_settings().settings.url.startswith("sqlite:///")


def test_unknown_key_in_file(isolated_home):
    (isolated_home / "config.toml").write_text('colour = "blue"\n')
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings()


def test_bad_toml(isolated_home):
    (isolated_home / "config.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


@pytest.mark.parametrize("url", ["not a url", "://nothing"])
def test_malformed_url(monkeypatch, url):
    monkeypatch.setenv("AGENTNB_DATABASE_URL", url)
    with pytest.raises(ConfigError, match="database_url"):
        load_settings()


def test_bad_number(monkeypatch):
    monkeypatch.setenv("AGENTNB_LOCK_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="lock_timeout"):
        load_settings()


def test_password_is_masked_everywhere(monkeypatch):
    url = "postgresql+psycopg://me:s3cr3t@db.example/agentnb"
    assert "s3cr3t" not in mask_url(url) and "***" in mask_url(url)
    monkeypatch.setenv("AGENTNB_DATABASE_URL", "postgresql+psycopg://me:s3cr3t@db/x")
    loaded = load_settings()
    assert loaded.settings.database_url  # kept for connecting
    import agentnb.api

    # psycopg is not a core dependency: without it the error names the extra, never the
    # password (the dev extra installs it, so its absence is made here)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"agentnb\[postgres\]") as info:
        agentnb.api.Store(loaded.settings)
    assert "s3cr3t" not in str(info.value)


def test_message_masks_password_on_error(monkeypatch):
    monkeypatch.setenv("AGENTNB_DATABASE_URL", "postgresql://me:s3cr3t@db:notaport/x")
    try:
        load_settings()
    except ConfigError as exc:
        assert "s3cr3t" not in str(exc)
