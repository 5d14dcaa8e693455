"""Model specs (``provider:model``) -> langchain-core chat models.

``resolve_model("openai:gpt-4o-mini", {"temperature": 0})`` builds the
integration's chat model; integration packages are imported here, lazily, so
importing :mod:`agentnb.models` stays cheap and works without them.

API keys come only from environment variables, never from settings: the
provider's usual variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``) or the one
named by ``model_kwargs["api_key_env"]``. Keys are handed to the integration as
secrets and never appear in a repr or an error message.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ..errors import InvalidValueError, ModelNotAvailableError

if TYPE_CHECKING:  # pragma: no cover
    from langchain_core.language_models import BaseChatModel

__all__ = [
    "PLACEHOLDER_KEY",
    "PROVIDERS",
    "ProviderInfo",
    "list_providers",
    "parse_model_spec",
    "resolve_model",
]

#: sent as the API key to an OpenAI-compatible server when no key is set
PLACEHOLDER_KEY = "not-needed"


class _Provider(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    package: str  # pip distribution
    module: str  # import name
    class_name: str
    key_env: str | None
    extra: str | None
    example: str
    description: str


PROVIDERS: dict[str, _Provider] = {
    p.name: p
    for p in [
        _Provider(
            name="offline",
            package="agentnb",
            module="agentnb.models.offline",
            class_name="OfflineChatModel",
            key_env=None,
            extra=None,
            example="offline",
            description="built-in deterministic model: no network, no key",
        ),
        _Provider(
            name="openai",
            package="langchain-openai",
            module="langchain_openai",
            class_name="ChatOpenAI",
            key_env="OPENAI_API_KEY",
            extra="openai",
            example="openai:gpt-4o-mini",
            description="OpenAI API (or any server at model_kwargs base_url)",
        ),
        _Provider(
            name="openai-compatible",
            package="langchain-openai",
            module="langchain_openai",
            class_name="ChatOpenAI",
            key_env="OPENAI_COMPATIBLE_API_KEY",
            extra="openai",
            example="openai-compatible:llama3",
            description="an OpenAI-compatible server; needs model_kwargs base_url",
        ),
        _Provider(
            name="anthropic",
            package="langchain-anthropic",
            module="langchain_anthropic",
            class_name="ChatAnthropic",
            key_env="ANTHROPIC_API_KEY",
            extra="anthropic",
            example="anthropic:claude-sonnet-4-5",
            description="Anthropic API",
        ),
        _Provider(
            name="ollama",
            package="langchain-ollama",
            module="langchain_ollama",
            class_name="ChatOllama",
            key_env=None,
            extra="ollama",
            example="ollama:llama3",
            description="a local Ollama server (model_kwargs base_url, default localhost)",
        ),
    ]
}

_KNOWN = ", ".join(PROVIDERS)

# bare model names we can guess a provider for
_BARE_HINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(gpt|o\d|chatgpt|text-|davinci)", re.IGNORECASE), "openai"),
    (re.compile(r"^claude", re.IGNORECASE), "anthropic"),
    (
        re.compile(
            r"^(llama|mistral|mixtral|qwen|gemma|phi|deepseek|codellama|tinyllama|smollm)",
            re.IGNORECASE,
        ),
        "ollama",
    ),
]


class ProviderInfo(BaseModel):
    """What ``%agent models`` and ``agentnb models`` show about one provider."""

    model_config = ConfigDict(frozen=True)

    name: str
    package: str
    installed: bool
    key_env: str | None
    key_set: bool
    extra: str | None
    example: str
    description: str = ""


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: sys.modules[name] is None
        return False


def list_providers() -> list[ProviderInfo]:
    """The known providers: package installed? key variable set? (never its value)."""
    out = []
    for p in PROVIDERS.values():
        out.append(
            ProviderInfo(
                name=p.name,
                package=p.package,
                installed=True if p.name == "offline" else _installed(p.module),
                key_env=p.key_env,
                key_set=bool(p.key_env and os.environ.get(p.key_env)),
                extra=p.extra,
                example=p.example,
                description=p.description,
            )
        )
    return out


def parse_model_spec(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o"`` -> ``("openai", "gpt-4o")``; ``"offline"`` -> ``("offline", "")``.

    Raises :class:`ModelNotAvailableError` for an unknown provider or a bare
    model name, :class:`InvalidValueError` for an empty spec or model name.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidValueError(
            f"model spec must be a 'provider:model' string like 'openai:gpt-4o-mini', "
            f"not {spec!r}"
        )
    spec = spec.strip()
    provider, sep, name = spec.partition(":")
    provider = provider.strip().lower().replace("_", "-")
    name = name.strip()
    if not sep:
        if provider == "offline":
            return "offline", ""
        if provider in PROVIDERS:
            raise InvalidValueError(
                f"model spec {spec!r} names a provider but no model: write e.g. "
                f"{PROVIDERS[provider].example!r}"
            )
        for pattern, guess in _BARE_HINTS:
            if pattern.match(spec):
                raise ModelNotAvailableError(
                    f"model spec {spec!r} has no provider: did you mean '{guess}:{spec}'? "
                    f"(known providers: {_KNOWN})"
                )
        raise ModelNotAvailableError(
            f"model spec {spec!r} has no provider: write PROVIDER:MODEL, e.g. "
            f"'openai:{spec}' or 'ollama:{spec}' (known providers: {_KNOWN})"
        )
    if provider not in PROVIDERS:
        raise ModelNotAvailableError(
            f"unknown model provider {provider!r} in {spec!r}; known providers: {_KNOWN}"
        )
    if not name and provider != "offline":
        raise InvalidValueError(
            f"model spec {spec!r} has no model name: write e.g. "
            f"{PROVIDERS[provider].example!r}"
        )
    return provider, name


def _check_no_secrets(spec: str, kwargs: dict[str, Any]) -> None:
    from ..text import looks_like_secret

    for key in kwargs:
        if looks_like_secret(key):
            raise InvalidValueError(
                f"model setting {key!r} for {spec!r} looks like a secret; API keys come "
                "from environment variables only (name one with api_key_env)"
            )


def _import_class(provider: _Provider, spec: str) -> Any:
    try:
        module = importlib.import_module(provider.module)
    except ImportError as exc:
        if not _installed(provider.module) or getattr(exc, "name", None) == provider.module:
            raise ModelNotAvailableError(
                f"model {spec!r} needs the {provider.package} package: "
                f"pip install 'agentnb[{provider.extra}]'"
            ) from None
        raise ModelNotAvailableError(
            f"model {spec!r}: the {provider.package} package is installed but cannot be "
            f"imported ({type(exc).__name__}: {exc})"
        ) from None
    return getattr(module, provider.class_name)


def _one_line(exc: BaseException, secret: str | None) -> str:
    errors = getattr(exc, "errors", None)
    text = ""
    if callable(errors):
        try:
            items = errors(include_input=False, include_url=False)
        except TypeError:  # not a pydantic ValidationError
            items = None
        if items:
            parts = []
            for item in items[:3]:
                loc = ".".join(str(p) for p in item.get("loc", ())) or "settings"
                parts.append(f"{loc}: {item.get('msg', '')}")
            text = "; ".join(parts)
    if not text:
        text = str(exc)
    text = " ".join(text.split())
    if secret:
        text = text.replace(secret, "***")
    return text


def _build(cls: Any, spec: str, kwargs: dict[str, Any], secret: str | None = None) -> Any:
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidValueError(
            f"bad model settings for {spec!r}: {_one_line(exc, secret)}"
        ) from None


def _api_key(
    spec: str, provider: _Provider, key_env: str | None, *, optional: bool
) -> str | None:
    """The key from ``key_env`` (or the provider's variable); None if optional and unset."""
    env = key_env or provider.key_env
    value = os.environ.get(env) if env else None
    if value:
        return value
    if key_env:
        raise ModelNotAvailableError(
            f"model {spec!r} reads its API key from the environment variable {key_env}, "
            "which is not set"
        )
    if optional:
        return None
    raise ModelNotAvailableError(
        f"model {spec!r} needs an API key: set the {provider.key_env} environment variable "
        "(or name another one with the model setting api_key_env)"
    )


def resolve_model(spec: str, model_kwargs: dict[str, Any] | None = None) -> BaseChatModel:
    """Build the chat model for ``spec`` with ``model_kwargs`` passed to its class.

    Specs: ``offline`` / ``offline:NAME``; ``openai:MODEL`` (with an optional
    ``base_url`` for another server); ``openai-compatible:MODEL`` (``base_url``
    required); ``anthropic:MODEL``; ``ollama:MODEL``. ``model_kwargs`` are the
    class's settings (temperature, max_tokens, base_url, timeout, max_retries,
    ...), except ``api_key_env``: the name of the environment variable holding
    the API key (default: ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``,
    ``OPENAI_COMPATIBLE_API_KEY``). Without a key, an OpenAI(-compatible)
    server at a ``base_url`` gets the placeholder key ``"not-needed"``;
    ``openai-compatible`` never falls back to ``OPENAI_API_KEY``, so that key is
    not sent to a third-party server. OpenAI models stream token usage
    (``stream_usage=True``).

    Raises :class:`ModelNotAvailableError` (unknown provider, bare model name,
    integration package not installed, API key not set) and
    :class:`InvalidValueError` (bad settings).
    """
    provider_name, name = parse_model_spec(spec)
    provider = PROVIDERS[provider_name]
    kwargs = dict(model_kwargs or {})
    key_env = kwargs.pop("api_key_env", None)
    if key_env is not None and (
        not isinstance(key_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env)
    ):
        raise InvalidValueError(
            f"api_key_env must name an environment variable (like MY_API_KEY), "
            f"not {key_env!r}"
        )
    _check_no_secrets(spec, kwargs)

    if provider_name == "offline":
        from .offline import OfflineChatModel

        kwargs.setdefault("model", f"offline:{name}" if name else "offline")
        return _build(OfflineChatModel, spec, kwargs)

    cls = _import_class(provider, spec)

    if provider_name in ("openai", "openai-compatible"):
        base_url = kwargs.get("base_url") or kwargs.get("openai_api_base")
        if provider_name == "openai-compatible" and not base_url:
            raise InvalidValueError(
                f"model {spec!r} needs a base_url in its model settings, "
                "e.g. base_url='http://127.0.0.1:8000/v1'"
            )
        key = _api_key(spec, provider, key_env, optional=bool(base_url))
        kwargs.setdefault("stream_usage", True)
        return _build(
            cls, spec, {"model": name, **kwargs, "api_key": key or PLACEHOLDER_KEY}, key
        )

    if provider_name == "anthropic":
        base_url = kwargs.get("base_url") or kwargs.get("anthropic_api_url")
        key = _api_key(spec, provider, key_env, optional=bool(base_url))
        return _build(
            cls, spec, {"model": name, **kwargs, "api_key": key or PLACEHOLDER_KEY}, key
        )

    # ollama: no key
    if key_env:
        raise InvalidValueError(f"model {spec!r} takes no API key: remove api_key_env")
    return _build(cls, spec, {"model": name, **kwargs})
