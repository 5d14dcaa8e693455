"""Settings: where the store lives, the default model, timeouts.

Each setting comes from, in order of precedence: an environment variable
``AGENTNB_<NAME>``, the file ``AGENTNB_HOME/config.toml``, the default.
:func:`load_settings` returns the validated :class:`Settings` together with
where each value came from, so ``agentnb config show`` can say it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

ENV_PREFIX = "AGENTNB_"
CONFIG_FILE = "config.toml"


def default_home() -> Path:
    """``~/.agentnb``: where the store and user templates live by default."""
    return Path.home() / ".agentnb"


class Settings(BaseModel):
    """Effective agentnb settings (validated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home, description="data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the store (default: DuckDB file in home)"
    )
    default_model: str = Field(default="offline", description="model spec for new agents")
    lock_timeout: float = Field(
        default=30.0, gt=0, description="seconds to wait for a store another process holds"
    )
    idle_release: float = Field(
        default=0.5, ge=0, description="seconds of idleness after which the store file is released"
    )
    tool_timeout: float = Field(default=60.0, gt=0, description="seconds a tool call may run")
    max_iterations: int = Field(default=8, ge=1, description="model calls per turn at most")
    user: str | None = Field(
        default=None, max_length=128,
        description="who new sessions are recorded for (default: the OS user)",
    )

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        if isinstance(value, str):
            return Path(value).expanduser()
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                f"not a database URL: {mask_url(value)!r} "
                "(expected e.g. duckdb:///path/agentnb.duckdb or sqlite:///path/x.db)"
            ) from None
        return value

    @property
    def url(self) -> str:
        """The store URL in force: ``database_url`` or the DuckDB file in ``home``."""
        if self.database_url:
            return self.database_url
        return f"duckdb:///{self.home / 'agentnb.duckdb'}"

    @property
    def user_name(self) -> str | None:
        """The user new sessions record: ``user`` (``AGENTNB_USER``), else the OS user."""
        if self.user:
            return self.user
        import getpass

        try:
            return getpass.getuser()[:128] or None
        except Exception:  # no user name in this environment (a container without one)
            return None

    @property
    def templates_dir(self) -> Path:
        """Where user templates live (``home/templates``)."""
        return self.home / "templates"


def mask_url(url: str) -> str:
    """The URL with its password and secret-looking query parameters as ``***``: safe to print.

    The rule is :func:`agentnb.text.mask_urls` (which error lines go through too).
    """
    from .text import mask_urls

    return mask_urls(url)


def duckdb_file(url: str) -> Path | None:
    """The database file of a ``duckdb:///`` URL (None for memory or other dialects)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "duckdb":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith(":memory:"):
        return None
    return Path(database).expanduser()


class LoadedSettings(BaseModel):
    """Settings plus the source of each value: ``env``, ``config.toml`` or ``default``."""

    settings: Settings
    sources: dict[str, str]
    config_file: Path


def _field_names() -> list[str]:
    return list(Settings.model_fields)


def load_settings(
    env: Mapping[str, str] | None = None, **overrides: Any
) -> LoadedSettings:
    """Read settings from the environment, ``config.toml`` and defaults.

    ``overrides`` (keyword arguments) win over everything; they are how code
    and tests pass a setting without touching the environment. A bad value or
    an unknown key raises :class:`ConfigError` with one readable line.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {name: "default" for name in _field_names()}

    home_value = overrides.get("home") or env.get(ENV_PREFIX + "HOME")
    home = Path(home_value).expanduser() if home_value else default_home()
    config_file = home / CONFIG_FILE
    if config_file.is_file():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_file}: not valid TOML ({exc})") from None
        data = data.get("agentnb", data) if isinstance(data.get("agentnb"), dict) else data
        for key, value in data.items():
            if key not in Settings.model_fields:
                known = ", ".join(_field_names())
                raise ConfigError(f"{config_file}: unknown setting {key!r} (known: {known})")
            values[key] = value
            sources[key] = str(config_file)
    for name in _field_names():
        env_name = ENV_PREFIX + name.upper()
        if env_name in env and env[env_name] != "":
            values[name] = env[env_name]
            sources[name] = f"env {env_name}"
    for name, value in overrides.items():
        if name not in Settings.model_fields:
            raise ConfigError(f"unknown setting {name!r} (known: {', '.join(_field_names())})")
        if value is not None:
            values[name] = value
            sources[name] = "argument"
    if "home" not in values:
        values["home"] = home
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "settings"
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"setting {name} ({sources.get(name, 'default')}): {msg}") from None
    return LoadedSettings(settings=settings, sources=sources, config_file=config_file)
