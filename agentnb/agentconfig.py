"""Changing an agent's config from ``key=value`` text (CLI, ``%agent set``).

Keys are the fields of :class:`~agentnb.schemas.AgentConfig` (``model``,
``system``, ``tools``, ``max_iterations``, ``tool_timeout``,
``auto_approve``), dotted paths into ``memory`` and ``model_kwargs``
(``memory.window_turns=6``, ``model_kwargs.temperature=0``), and shortcuts:
``memory=window`` sets the strategy, and a model setting such as
``temperature``, ``base_url`` or ``max_tokens`` goes to ``model_kwargs``.
Values are read as JSON when they parse (``3``, ``true``, ``["a"]``) and as
text otherwise; ``tools=a,b`` is a list. A value that starts like a JSON list
or object (``[`` or ``{``) but does not parse is refused, rather than stored
as text (``tools=["add",`` would otherwise name a tool ``["add"``), except
for the text settings in :data:`TEXT_SETTINGS`.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from pydantic import ValidationError

from .errors import InvalidValueError
from .schemas import AgentConfig, MemoryConfig

#: Keys that are model settings, accepted without the ``model_kwargs.`` prefix.
MODEL_SETTINGS = {
    "temperature",
    "base_url",
    "max_tokens",
    "top_p",
    "timeout",
    "max_retries",
    "seed",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "num_ctx",
}


#: Settings whose value is free text: never refused as malformed JSON.
TEXT_SETTINGS = {"system", "name", "description", "model", "base_url"}


def parse_value(text: str, key: str | None = None) -> Any:
    """JSON if ``text`` parses as JSON, else the text itself.

    Text that starts with ``[`` or ``{`` is meant as JSON: if it does not
    parse, :class:`InvalidValueError` says where (unless ``key`` is one of
    :data:`TEXT_SETTINGS`).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip()[:1] in ("[", "{") and key not in TEXT_SETTINGS:
            # the value itself is not shown: it may hold a secret
            raise InvalidValueError(
                f"the value of {key or 'the setting'} starts like JSON but is not valid JSON "
                f"({exc.msg} at character {exc.pos + 1})"
            ) from None
        return text
    except TypeError:
        return text


def parse_assignments(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; a missing ``=`` is an error."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidValueError(f"expected key=value, got {item!r}")
        out[key] = parse_value(value, key)
    return out


def apply_changes(config: AgentConfig, changes: Mapping[str, Any]) -> AgentConfig:
    """A new config with ``changes`` applied and validated."""
    data = config.model_dump()
    known = set(AgentConfig.model_fields)
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head == "memory" and not rest:
            if isinstance(value, dict):
                data["memory"] = {**data["memory"], **value}
            else:
                data["memory"]["strategy"] = value
        elif head == "memory":
            if rest not in MemoryConfig.model_fields:
                raise InvalidValueError(
                    f"unknown memory setting {rest!r} (known: {', '.join(MemoryConfig.model_fields)})"
                )
            data["memory"][rest] = value
        elif head == "model_kwargs" and rest:
            if value is None:
                data["model_kwargs"].pop(rest, None)
            else:
                data["model_kwargs"][rest] = value
        elif key in MODEL_SETTINGS:
            if value is None:
                data["model_kwargs"].pop(key, None)
            else:
                data["model_kwargs"][key] = value
        elif key == "tools" and isinstance(value, str):
            data["tools"] = [t.strip() for t in value.split(",") if t.strip()]
        elif key == "system" and not isinstance(value, str):
            data["system"] = json.dumps(value) if not isinstance(value, str) else value
        elif key in known:
            data[key] = value
        else:
            choices = sorted(known | {"memory.<setting>", "model_kwargs.<setting>"} | MODEL_SETTINGS)
            raise InvalidValueError(f"unknown setting {key!r} (known: {', '.join(choices)})")
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidValueError(f"{loc}: {err['msg'].removeprefix('Value error, ')}") from None
