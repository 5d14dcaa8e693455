"""Changing an agent's settings: the one ``key=value`` rule, and validation when written.

Keys (``%agent set``, ``agentnb agents update``, ``store.update_agent``):

* ``name`` (renames) and ``description``: the agent's record;
* the fields of :class:`~agentnb.schemas.AgentConfig`: ``model``, ``system``,
  ``tools``, ``max_iterations``, ``tool_timeout``, ``auto_approve``;
* ``memory`` (the strategy: full, window, tokens, summary) and
  ``memory.<setting>`` (``memory.window_turns=6``);
* model settings, such as ``temperature``, ``max_tokens``, ``base_url``: any
  parameter of the agent's model class (``ChatOpenAI``'s, the offline model's),
  also written ``model_kwargs.<setting>``; ``api_key_env`` names the variable
  holding the key.

The value rule (:func:`parse_value`), the same in every front end:

* a text setting (``name``, ``description``, ``system``, ``model``,
  ``base_url``) is the text as typed; a JSON string (``"  padded  "``, in
  double quotes) is unquoted;
* a number, a boolean (``true``/``false``, ``yes``/``no``, ``on``/``off``) or
  a list (``tools=add,mul`` or JSON ``["add", "mul"]``) is read as that type;
  anything else that does not read as the setting's type is refused;
* other model settings: JSON when the text is JSON (``0.5``, ``["\\n"]``),
  else the text;
* an empty value (``temperature=``) removes the setting: it is back to its
  default (also ``--unset temperature``).

Every change is validated before anything is stored: the config by its
pydantic model, a model spec by :func:`~agentnb.models.parse_model_spec`, and
model settings against the model class's own parameters
(:func:`check_model_settings`), so ``temperature=abc`` is one clear line and
never a broken agent.
"""

from __future__ import annotations

import json
import typing
from typing import Any, Iterable, Mapping

from pydantic import TypeAdapter, ValidationError

from .errors import InvalidValueError
from .schemas import AgentConfig, MemoryConfig
from .text import did_you_mean, excerpt, looks_like_secret, mask_urls


class _Unset:
    """The value of a setting being removed (``key=`` or ``--unset key``)."""

    _instance: "_Unset | None" = None

    def __new__(cls) -> "_Unset":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"


#: Marks a setting to remove (back to its default).
UNSET = _Unset()

#: Settings of the agent's record rather than its config.
RECORD_SETTINGS = ("name", "description")
#: Settings whose value is free text.
TEXT_SETTINGS = {"name", "description", "system", "model", "base_url"}
#: Model settings every provider takes (a turn on another provider keeps only these).
PORTABLE_SETTINGS = ("temperature", "max_tokens", "timeout", "max_retries")
#: Settings agentnb itself reads from model_kwargs (not passed to the model class).
AGENTNB_MODEL_SETTINGS = ("api_key_env",)
#: Model-class fields that are not settings a user sets.
_NOT_SETTINGS = {"model", "model_name", "callbacks", "callback_manager", "cache", "verbose",
                 "tags", "metadata", "custom_get_token_ids", "rate_limiter", "name",
                 "disable_streaming", "output_version", "profile", "client", "async_client",
                 "root_client", "root_async_client", "http_client", "http_async_client"}
#: Types of common settings, for providers whose package is not installed.
_GENERIC_TYPES: dict[str, Any] = {
    "temperature": float, "max_tokens": int, "timeout": float, "max_retries": int,
    "top_p": float, "top_k": int, "seed": int, "stop": list[str], "base_url": str,
    "frequency_penalty": float, "presence_penalty": float, "num_ctx": int,
}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _config_type(key: str) -> Any:
    """The annotation of an AgentConfig/MemoryConfig field for ``key``, or None."""
    head, _, rest = key.partition(".")
    if head == "memory" and rest:
        field = MemoryConfig.model_fields.get(rest)
    elif key == "memory":
        return str
    else:
        field = AgentConfig.model_fields.get(key)
    return field.annotation if field is not None else None


def _is(annotation: Any, kind: type) -> bool:
    args = typing.get_args(annotation)
    if annotation is kind:
        return True
    return bool(args) and kind in args and typing.get_origin(annotation) is not list


def _as_list(key: str, text: str) -> list:
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidValueError(
                f"{key}: not a valid JSON list ({exc.msg} at character {exc.pos + 1}); "
                f"write {key}=a,b or {key}='[\"a\", \"b\"]'") from None
        if not isinstance(value, list):
            raise InvalidValueError(f"{key}: expects a list")
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


def _json_or_text(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip()[:1] in ("[", "{"):
            # the value itself is not shown: it may hold a secret
            raise InvalidValueError(
                f"the value of {key} starts like JSON but is not valid JSON "
                f"({exc.msg} at character {exc.pos + 1})") from None
        return text


def parse_value(key: str, text: str) -> Any:
    """The value of ``key=text`` under the rule of this module (``UNSET`` for empty)."""
    if text == "":
        return UNSET
    base = key.rsplit(".", 1)[-1] if key.startswith("model_kwargs.") else key
    if base in TEXT_SETTINGS:
        if len(text) >= 2 and text[0] == text[-1] == '"':
            try:
                decoded = json.loads(text)
            except json.JSONDecodeError:
                return text
            return decoded if isinstance(decoded, str) else text
        return text
    annotation = _config_type(key)
    if annotation is None:  # a model setting: its class validates the type later
        return _json_or_text(key, text)
    if typing.get_origin(annotation) is dict or (key == "memory" and text.lstrip()[:1] == "{"):
        value = _json_or_text(key, text)
        if not isinstance(value, dict) and key != "memory":
            raise InvalidValueError(f"{key}: expects a JSON object such as "
                                    f"{key}='{{\"temperature\": 0}}'")
        return value
    word = text.strip().lower()
    if _is(annotation, bool):
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise InvalidValueError(f"{key}: expects true or false, got {excerpt(text)}")
    if _is(annotation, int):
        try:
            return int(text.strip().replace("_", ""))
        except ValueError:
            raise InvalidValueError(f"{key}: expects a whole number, got {excerpt(text)}") from None
    if _is(annotation, float):
        try:
            return float(text.strip())
        except ValueError:
            raise InvalidValueError(f"{key}: expects a number, got {excerpt(text)}") from None
    if typing.get_origin(annotation) is list:
        return _as_list(key, text)
    return text


def parse_assignments(items: Iterable[str], unset: Iterable[str] = ()) -> dict[str, Any]:
    """``["a=1", "b=x", "c="]`` -> ``{"a": 1, "b": "x", "c": UNSET}``; ``unset`` keys too."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidValueError(f"expected key=value, got {excerpt(item)}")
        out[key] = parse_value(key, value)
    for key in unset:
        out[str(key).strip()] = UNSET
    return out


def _model_fields(spec: str) -> dict[str, Any] | None:
    """The settings a model class takes, ``name -> annotation``; None if it cannot be known."""
    import importlib
    import importlib.util

    from .models.registry import PROVIDERS, parse_model_spec

    provider = PROVIDERS[parse_model_spec(spec)[0]]
    if importlib.util.find_spec(provider.module.split(".")[0]) is None:
        return None
    try:
        cls = getattr(importlib.import_module(provider.module), provider.class_name)
    except Exception:  # a broken install: resolve_model says what is wrong at the turn
        return None
    fields: dict[str, Any] = {}
    for name, info in getattr(cls, "model_fields", {}).items():
        if name in _NOT_SETTINGS or looks_like_secret(name):
            continue
        fields[name] = info.annotation
        if info.alias and info.alias not in _NOT_SETTINGS:
            fields[info.alias] = info.annotation
    return fields


_TYPE_WORDS = {"float": "a number", "int": "a whole number", "bool": "true or false",
               "str": "text", "list": "a list", "dict": "an object"}


def _type_name(annotation: Any) -> str:
    kinds = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    names = []
    for kind in kinds:
        base = typing.get_origin(kind) or kind
        name = getattr(base, "__name__", str(base))
        names.append(_TYPE_WORDS.get(name, name))
    return " or ".join(dict.fromkeys(names))


def check_model_settings(spec: str, settings: Mapping[str, Any]) -> None:
    """Refuse settings that ``spec``'s model class does not take, or values of the wrong type.

    When the provider's package is not installed the class cannot be asked:
    common settings are checked by their usual types, others are accepted.
    """
    from .models import parse_model_spec

    provider, _ = parse_model_spec(spec)
    fields = _model_fields(spec)
    for key, value in settings.items():
        if key in AGENTNB_MODEL_SETTINGS:
            if provider in ("offline", "ollama"):
                raise InvalidValueError(f"{key}: {provider} models take no API key")
            continue
        if looks_like_secret(key):
            raise InvalidValueError(
                f"model setting {key!r} looks like a secret; secrets come from environment "
                "variables only (name one with api_key_env=VARIABLE)")
        if isinstance(value, str) and mask_urls(value) != value:
            raise InvalidValueError(
                f"model setting {key!r} is a URL with a secret in it ({mask_urls(value)}); "
                "secrets are never stored: give the key through api_key_env=VARIABLE")
        annotation = fields.get(key) if fields is not None else _GENERIC_TYPES.get(key)
        if fields is not None and key not in fields:
            hint = did_you_mean(key, fields)
            raise InvalidValueError(
                f"{key!r} is not a setting of {provider} models"
                + (f"; did you mean {hint!r}?" if hint else "")
                + f" (remove it with {key}=)")
        if annotation is None:
            continue
        try:
            TypeAdapter(annotation).validate_python(value)
        except ValidationError:
            raise InvalidValueError(
                f"{key}: expects {_type_name(annotation)}, got {excerpt(value)}") from None
        except Exception:  # an annotation pydantic cannot check: the class will at the turn
            continue


def is_model_setting(key: str, spec: str) -> bool:
    """True when ``key`` (not a config field) is a setting of ``spec``'s model."""
    if key in AGENTNB_MODEL_SETTINGS or key in _GENERIC_TYPES:
        return True
    fields = _model_fields(spec)
    return fields is not None and key in fields


def apply_changes(config: AgentConfig, changes: Mapping[str, Any]) -> AgentConfig:
    """A new, validated config with ``changes`` applied (``UNSET`` or None removes a key).

    Raises :class:`InvalidValueError` naming the setting for an unknown key, a
    value of the wrong type, an unknown model, or a model setting the model
    does not take; nothing is changed then.
    """
    data = config.model_dump()
    known = set(AgentConfig.model_fields) - {"model_kwargs", "memory"}
    new_model = changes.get("model", config.model)
    if new_model is UNSET or new_model is None:
        new_model = AgentConfig.model_fields["model"].default
    if not isinstance(new_model, str):
        raise InvalidValueError("model: expects a model spec such as 'offline' or "
                                "'openai:gpt-4o-mini'")
    from .models import parse_model_spec

    parse_model_spec(new_model)  # an unknown provider is refused when it is written
    defaults = AgentConfig()
    for key, value in changes.items():
        remove = value is UNSET or value is None
        head, _, rest = key.partition(".")
        if head == "memory" and not rest:
            if remove:
                data["memory"] = MemoryConfig().model_dump()
            elif isinstance(value, Mapping):
                data["memory"] = {**data["memory"], **dict(value)}
            else:
                data["memory"]["strategy"] = value
        elif head == "memory":
            if rest not in MemoryConfig.model_fields:
                raise InvalidValueError(
                    f"unknown memory setting {rest!r} (known: "
                    f"{', '.join(MemoryConfig.model_fields)})")
            data["memory"][rest] = (MemoryConfig.model_fields[rest].default if remove
                                    else value)
        elif head == "model_kwargs" and not rest:
            data["model_kwargs"] = {} if remove else dict(value)
        elif head == "model_kwargs":
            _set_kwarg(data, rest, value, remove)
        elif key in known:
            data[key] = getattr(defaults, key) if remove else value
        elif key in RECORD_SETTINGS:
            raise InvalidValueError(f"{key} is not part of the config (rename or describe the "
                                    "agent with update_agent(rename=..., description=...))")
        elif looks_like_secret(key):
            raise InvalidValueError(
                f"setting {excerpt(key)} looks like a secret; secrets come from environment "
                "variables only (name one with api_key_env=VARIABLE)")
        elif is_model_setting(key, new_model) or (remove and key in data["model_kwargs"]):
            _set_kwarg(data, key, value, remove)
        else:
            choices = sorted(known | {"memory", "memory.<setting>", "model_kwargs.<setting>"}
                             | set(PORTABLE_SETTINGS))
            hint = did_you_mean(key, sorted(known | {"memory", *PORTABLE_SETTINGS}))
            raise InvalidValueError(
                f"unknown setting {excerpt(key)}"
                + (f"; did you mean {hint!r}?" if hint else "")
                + f" (settings: {', '.join(choices)}, and the model's own settings)")
    if isinstance(data.get("tools"), str):
        data["tools"] = [t.strip() for t in data["tools"].split(",") if t.strip()]
    try:
        result = AgentConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InvalidValueError(f"{loc}: {err['msg'].removeprefix('Value error, ')}") from None
    check_model_settings(result.model, result.model_kwargs)
    return result


def _set_kwarg(data: dict, key: str, value: Any, remove: bool) -> None:
    if remove:
        data["model_kwargs"].pop(key, None)
    else:
        data["model_kwargs"][key] = value


def settings_for(spec: str, config: AgentConfig) -> dict[str, Any]:
    """The agent's model settings for a turn on ``spec``.

    All of them for the agent's own model's provider; for a turn on another
    provider's model (``chat(..., model="offline")`` on an agent configured
    for ``openai:`` with a ``base_url``), only the portable ones.
    """
    from .models import parse_model_spec

    kwargs = dict(config.model_kwargs)
    if spec == config.model:
        return kwargs
    try:
        same = parse_model_spec(spec)[0] == parse_model_spec(config.model)[0]
    except Exception:  # a bad spec is reported when the model is built, with its own message
        same = True
    return kwargs if same else {k: v for k, v in kwargs.items() if k in PORTABLE_SETTINGS}


def setting_value(config: AgentConfig, key: str) -> Any:
    """The value in force for ``key`` as ``update`` accepts it (None when unset)."""
    data = config.model_dump(mode="json")
    head, _, rest = key.partition(".")
    if key == "memory":
        return data["memory"]["strategy"]
    if head == "memory" and rest:
        return data["memory"].get(rest)
    if head == "model_kwargs" and rest:
        return data["model_kwargs"].get(rest)
    if key in data:
        return data[key]
    return data["model_kwargs"].get(key)


__all__ = [
    "PORTABLE_SETTINGS",
    "TEXT_SETTINGS",
    "UNSET",
    "apply_changes",
    "check_model_settings",
    "parse_assignments",
    "parse_value",
    "setting_value",
    "settings_for",
]
