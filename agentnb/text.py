"""Small text rules every layer shares: one implementation each, standard library only.

* :func:`shorten`: text on one line, cut with an ellipsis;
* :func:`one_line`: a message (possibly multi-line) as one line;
* :func:`excerpt`: a short quote of what the user typed, for an error line;
* :func:`did_you_mean`: the close match to suggest for a typo;
* :func:`short_id`: the 8 hex digits listings show and users type;
* :func:`looks_like_secret`: whether a setting's name says it holds a secret;
* :func:`mask_urls`: text with the secret parts of its URLs masked;
* :func:`args_text`: keyword arguments as written in a call (``a=2, b='x'``);
* :func:`interpolate`: ``{name}`` fields filled from a namespace, anything else kept.
"""

from __future__ import annotations

import difflib
import re
import string
import uuid
from typing import Any, Iterable, Mapping

ELLIPSIS = "…"


def shorten(text: Any, width: int = 60, *, ellipsis: str = ELLIPSIS) -> str:
    """``text`` on one line (whitespace runs become one space), cut to ``width`` with ``…``.

    ``ellipsis="..."`` for text a model reads (plain ASCII).
    """
    if text is None or text == "":
        return ""
    flat = " ".join(str(text).split())
    if len(flat) <= width:
        return flat
    return flat[: max(width - len(ellipsis), 0)] + ellipsis


def one_line(message: Any, *, limit: int = 500) -> str:
    """A message as one line: its non-empty lines joined with ``; ``, at most ``limit`` chars."""
    lines = [" ".join(line.split()) for line in str(message).splitlines()]
    text = "; ".join(line for line in lines if line)
    return shorten(text, limit) if limit else text


def excerpt(value: Any, width: int = 40) -> str:
    """A short quote of user input for an error line: ``'abc…'`` (repr, one line, cut)."""
    text = str(value)
    if len(text) > width:
        text = text[: width - 1] + ELLIPSIS
    return repr(" ".join(text.split()) if "\n" in text or "\r" in text else text)


_LONG_RUN = re.compile(r"\S{61,}")


def clip(message: Any, *, run: int = 40, limit: int = 400) -> str:
    """A message fit for one error line: every run of 61+ non-space characters (a long value
    the user typed, quoted or not) cut to ``run`` characters and ``…`` (a path stays whole up
    to 240 characters, else keeps its last 120), newlines joined, and the whole cut at ``limit`` characters. What every
    UserError's message goes through."""

    def cut(match: re.Match) -> str:
        text = match.group(0)
        if "/" in text or "\\" in text:  # a path: whole when it is a sane length, else its end
            return text if len(text) <= 240 else ELLIPSIS + text[-120:]
        closer = ""
        if text[0] in "'\"" and text[0] in text[1:]:
            tail = text[text.rindex(text[0]):]
            closer = tail if len(tail) <= 3 else ""  # keep the closing quote and ": " etc.
        return text[:run] + ELLIPSIS + closer

    return shorten(_LONG_RUN.sub(cut, one_line(message, limit=0)), limit)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` if one is close enough to suggest, else None."""
    found = close_matches(word, choices, n=1)
    return found[0] if found else None


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` choices close to ``word``, closest first (the one "did you mean" rule)."""
    return difflib.get_close_matches(str(word), list(choices), n=n, cutoff=0.6)


def short_id(value: uuid.UUID | str) -> str:
    """The first 8 hex digits of an id: what listings show and what users type."""
    return str(value).replace("-", "")[:8]


#: A name ending in one of these words holds a secret (``api_key``, ``access_token``).
_SECRET_ENDINGS = {"key", "token", "secret", "password", "passwd", "pwd", "credential",
                   "credentials", "apikey", "auth"}
#: A name containing one of these anywhere holds a secret (``secret_name``, ``password_x``).
_SECRET_PARTS = ("secret", "password", "passwd", "api_key", "apikey", "credential")


def looks_like_secret(name: str) -> bool:
    """True when a setting or parameter named ``name`` would hold a secret.

    ``api_key``, ``access_token``, ``password``, ``client_secret``: yes;
    ``api_key_env`` (names the variable holding a key), ``max_tokens``,
    ``token_delay``: no. The one rule for settings, URLs and headers.
    """
    low = str(name).strip().lower().replace("-", "_")
    if not low or low.endswith("_env"):
        return False
    if low.rsplit("_", 1)[-1] in _SECRET_ENDINGS:
        return True
    return any(part in low for part in _SECRET_PARTS)


#: A URL inside any text (up to whitespace or a quote; a trailing ``:``, ``.``... is the text's).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]*[^\s'\"<>`:.,;)\]]")
#: ``scheme://user:PASSWORD@``: the password runs to the first ``@`` (as SQLAlchemy parses it).
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*):([^@]*)@")
#: ``?name=value`` / ``&name=value`` / ``;name=value`` in a URL.
_URL_PARAM = re.compile(r"([?&;])([^=&#;]+)=([^&#;]*)")
#: Query parameter names that hold a secret besides what :func:`looks_like_secret` says.
_URL_SECRET_PARAMS = {"pass", "pw", "sig", "signature"}
MASK = "***"


def _mask_one_url(url: str) -> str:
    url = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@" if m.group(2) else m.group(0), url)

    def param(m: re.Match) -> str:
        name = m.group(2)
        bare = name.strip().lower()
        if m.group(3) and (looks_like_secret(bare) or bare in _URL_SECRET_PARAMS):
            return f"{m.group(1)}{name}={MASK}"
        return m.group(0)

    head, sep, tail = url.partition("?")
    return head + sep + _URL_PARAM.sub(param, sep + tail)[1:] if sep else head


def mask_urls(text: Any) -> str:
    """``text`` with every secret-looking part of every URL in it shown as ``***``.

    The password of ``user:password@`` and the value of each query parameter
    whose name holds a secret (``password``, ``token``, ``api_key``,
    ``sslpassword``, ``motherduck_token``, ...: :func:`looks_like_secret`). The
    one rule for showing a URL: settings, ``db path``, error lines.
    """
    text = str(text)
    if "://" not in text:
        return text
    return _URL.sub(lambda m: _mask_one_url(m.group(0)), text)


def args_text(args: Mapping[str, Any] | None) -> str:
    """Keyword arguments as they would be written in a call: ``a=2, b='x'``."""
    return ", ".join(f"{k}={v!r}" for k, v in (args or {}).items())


_FIELD = re.compile(
    r"\{\{|\}\}"
    r"|\{(?P<field>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\[\]{}]*\])*)"
    r"(?:!(?P<conv>[rsa]))?(?::(?P<spec>[^{}]*))?\}"
)
_FORMATTER = string.Formatter()


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """``text`` with each resolvable ``{field}`` replaced from ``namespace``.

    ``{name}``, ``{name.attr}``, ``{name[key]}``, with ``!r``/``!s`` and a format
    spec (``{total:,.2f}``); ``{{`` and ``}}`` are literal braces; anything else
    in braces (an unknown name, JSON, a set literal, a lone brace) stays exactly
    as written, so pasting code or JSON into a message or a prompt is safe.
    """

    def replace(match: re.Match) -> str:
        whole = match.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        try:
            value, _ = _FORMATTER.get_field(match.group("field"), (), namespace)
            value = _FORMATTER.convert_field(value, match.group("conv"))
            return _FORMATTER.format_field(value, match.group("spec") or "")
        except Exception:  # unknown name, bad index, bad spec: leave it as written
            return whole

    return _FIELD.sub(replace, text)


__all__ = [
    "args_text",
    "did_you_mean",
    "excerpt",
    "interpolate",
    "looks_like_secret",
    "mask_urls",
    "one_line",
    "short_id",
    "shorten",
]
