"""Agent templates: a system prompt, tools, memory and model defaults.

Built-in templates are the ``*.toml`` files of this package; a user's own
live in ``AGENTNB_HOME/templates/NAME.toml`` and win over a built-in of the
same name. A template file has a ``description`` and a ``[config]`` table
with the fields of :class:`~agentnb.schemas.AgentConfig`.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..config import Settings, load_settings
from ..errors import InvalidValueError, NotFoundError
from ..schemas import AgentConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class Template(BaseModel):
    """One template, ready to create an agent from."""

    name: str
    description: str = ""
    source: str
    config: AgentConfig


def _builtin_files() -> dict[str, Path]:
    root = resources.files(__name__)
    return {
        Path(str(f)).stem: Path(str(f))
        for f in root.iterdir()
        if str(f).endswith(".toml")
    }


def _user_files(settings: Settings) -> dict[str, Path]:
    folder = settings.templates_dir
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def _read(name: str, path: Path, source: str) -> Template:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Template(
            name=name,
            description=data.get("description", ""),
            source=source,
            config=AgentConfig.model_validate(data.get("config", {})),
        )
    except (tomllib.TOMLDecodeError, ValidationError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidValueError(f"template {name!r} ({path}) is not valid: {first}") from None


def list_templates(settings: Settings | None = None) -> list[Template]:
    """Built-in and user templates by name (a user template hides a built-in one)."""
    settings = settings or load_settings().settings
    found = {name: ("built-in", path) for name, path in _builtin_files().items()}
    found.update({name: (str(path), path) for name, path in _user_files(settings).items()})
    return [_read(name, path, source) for name, (source, path) in sorted(found.items())]


def load_template(name: str, settings: Settings | None = None) -> Template:
    """The template called ``name``; NotFoundError lists the ones that exist."""
    settings = settings or load_settings().settings
    user = _user_files(settings)
    if name in user:
        return _read(name, user[name], str(user[name]))
    builtin = _builtin_files()
    if name in builtin:
        return _read(name, builtin[name], "built-in")
    names = sorted(set(builtin) | set(user))
    from ..text import did_you_mean

    close = did_you_mean(name, names)
    hint = f"did you mean {close!r}?" if close else f"have: {', '.join(names)}"
    raise NotFoundError(f"no template named {name!r}; {hint}", see="templates list")


__all__ = ["Template", "list_templates", "load_template"]
