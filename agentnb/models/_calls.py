"""Pure-Python helpers behind the offline model (stdlib only, no langchain).

* :func:`count_tokens` / :func:`split_tokens`: the offline "tokenizer" (one
  token per word or punctuation mark).
* :func:`find_tool_calls`: the ``NAME(k=v, ...)`` convention, parsed with
  :mod:`ast` (literal arguments only).
* :func:`summarize_results`: the sentence that reports tool results.
* :func:`args_from_schema`: deterministic arguments for a JSON schema, taken
  from the user's message where possible (forced tool calls, structured output).

The test suite's OpenAI-compatible server reuses these, so both fakes follow
the same convention.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "args_from_schema",
    "call_id",
    "count_tokens",
    "find_tool_calls",
    "split_tokens",
    "summarize_results",
]

_TOKEN = re.compile(r"\w+|[^\w\s]")
_TOKEN_WITH_SPACE = re.compile(r"\s*(?:\w+|[^\w\s])")
_NAME_OPEN = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\(")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_YES = re.compile(r"\b(yes|true)\b", re.IGNORECASE)

#: longest tool result quoted in full by :func:`summarize_results`
RESULT_CHARS = 500
#: a written call is at most this long, and at most this many ")" are tried
_MAX_CALL_CHARS = 4_000
_MAX_PARSE_ATTEMPTS = 64


def count_tokens(text: str) -> int:
    """Offline token count: one per word (``\\w+``) or punctuation mark."""
    return len(_TOKEN.findall(text or ""))


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into word-ish tokens that concatenate back to ``text`` exactly.

    Each token carries its leading whitespace; trailing whitespace goes with the
    last token. ``len(split_tokens(t)) == count_tokens(t)`` for any text with at
    least one token.
    """
    if not text:
        return []
    pieces = _TOKEN_WITH_SPACE.findall(text)
    if not pieces:
        return [text]
    rest = text[sum(len(p) for p in pieces) :]
    if rest:
        pieces[-1] += rest
    return pieces


def call_id(name: str, args: Mapping[str, Any], position: int, turn: int = 0) -> str:
    """A deterministic tool-call id: ``call_`` + 16 hex digits."""
    payload = json.dumps([name, args, position, turn], sort_keys=True, default=str)
    return "call_" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def _param_names(schema: Mapping[str, Any] | None) -> list[str]:
    if not schema:
        return []
    return list((schema.get("properties") or {}).keys())


def _parse_call(text: str, start: int, name: str) -> tuple[ast.Call | None, int]:
    """The ``ast.Call`` starting at ``text[start]`` and the index after it."""
    pos = text.find("(", start)
    depth_end = pos
    for _ in range(_MAX_PARSE_ATTEMPTS):
        depth_end = text.find(")", depth_end + 1)
        if depth_end < 0 or depth_end - start > _MAX_CALL_CHARS:
            break
        snippet = text[start : depth_end + 1]
        try:
            node = ast.parse(snippet, mode="eval").body
        except SyntaxError:
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
            return node, depth_end + 1
        break
    return None, start + len(name)


def find_tool_calls(
    text: str, tools: Mapping[str, Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """Calls ``NAME(k=v, ...)`` in ``text`` for the tool names in ``tools``.

    ``tools`` maps a tool name to its JSON schema for parameters (or None).
    Arguments must be Python literals (numbers, strings, lists, dicts, tuples,
    True/False/None); positional arguments are matched to the schema's
    properties in order. A call with a non-literal argument, ``*args`` or
    ``**kw``, too many positional arguments, or a name that is not a bound tool
    is ignored. Returns ``[{"name": ..., "args": {...}}, ...]`` in text order.
    """
    found: list[dict[str, Any]] = []
    if not text or not tools:
        return found
    pos = 0
    while True:
        match = _NAME_OPEN.search(text, pos)
        if match is None:
            break
        name = match.group(1)
        if name not in tools:
            pos = match.end()
            continue
        node, end = _parse_call(text, match.start(), name)
        if node is None:
            pos = match.end()
            continue
        args = _literal_args(node, _param_names(tools[name]))
        if args is not None:
            found.append({"name": name, "args": args})
            pos = end
        else:
            pos = match.end()
    return found


def _literal_args(node: ast.Call, params: Sequence[str]) -> dict[str, Any] | None:
    args: dict[str, Any] = {}
    if len(node.args) > len(params):
        return None
    try:
        for param, arg in zip(params, node.args):
            if isinstance(arg, ast.Starred):
                return None
            args[param] = _jsonable(ast.literal_eval(arg))
        for kw in node.keywords:
            if kw.arg is None:  # **kwargs
                return None
            args[kw.arg] = _jsonable(ast.literal_eval(kw.value))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return args


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, complex):
        raise ValueError("complex numbers are not JSON")
    return value


def _clip(text: str, limit: int = RESULT_CHARS) -> str:
    text = " ".join(str(text).split()) if "\n" in str(text) else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize_results(results: Iterable[tuple[str, str, bool]]) -> str:
    """One sentence reporting tool results: ``(name, content, is_error)`` each.

    * one result: ``"add returned 5."`` or ``"add failed: <error>."``
    * several: ``"The results: add -> 5; mul -> error: <error>."``
    """
    items = [(name, _clip(content) or "(empty)", error) for name, content, error in results]
    if not items:
        return "No tool results."
    if len(items) == 1:
        name, content, error = items[0]
        text = f"{name} failed: {content}" if error else f"{name} returned {content}"
    else:
        text = "The results: " + "; ".join(
            f"{name} -> error: {content}" if error else f"{name} -> {content}"
            for name, content, error in items
        )
    return text if text.endswith(".") else text + "."


# ---------------------------------------------------------------------------
# arguments from a JSON schema


class _Context:
    def __init__(self, text: str, root: Mapping[str, Any]) -> None:
        self.text = text or ""
        self.lower = self.text.lower()
        self.root = root
        self.numbers = [float(n) for n in _NUMBER.findall(self.text)]
        self.next_number = 0
        words = self.text.split()
        excerpt = " ".join(words[:12])
        if len(words) > 12:
            excerpt += " …"
        self.excerpt = excerpt or "offline"

    def number(self) -> float:
        if not self.numbers:
            return 0.0
        if self.next_number < len(self.numbers):
            value = self.numbers[self.next_number]
        else:
            value = self.numbers[0]
        self.next_number += 1
        return value


def _resolve_ref(schema: Mapping[str, Any], ctx: _Context) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = ctx.root
    for part in ref[2:].split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    merged = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return merged


def _pick_enum(options: Sequence[Any], ctx: _Context) -> Any:
    for option in options:
        if isinstance(option, str) and option and re.search(
            r"(?<!\w)" + re.escape(option.lower()) + r"(?!\w)", ctx.lower
        ):
            return option
    for option in options:  # non-string options, by their text
        if not isinstance(option, str) and option is not None and re.search(
            r"(?<![\w.])" + re.escape(json.dumps(option).lower()) + r"(?![\w.])", ctx.lower
        ):
            return option
    return options[0] if options else None


def _bounded(value: float, schema: Mapping[str, Any], integer: bool) -> float:
    step = 1 if integer else 1e-6
    lo = schema.get("minimum")
    hi = schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        lo = schema["exclusiveMinimum"] + step
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        hi = schema["exclusiveMaximum"] - step
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    if integer:
        value = int(value)
        if lo is not None and value < lo:
            value += 1
    return value


def _string(schema: Mapping[str, Any], ctx: _Context, name: str | None) -> str:
    fmt = schema.get("format")
    formats = {
        "date-time": "2000-01-01T00:00:00Z",
        "date": "2000-01-01",
        "time": "00:00:00",
        "email": "user@example.com",
        "uri": "https://example.com/",
        "url": "https://example.com/",
        "uuid": "00000000-0000-4000-8000-000000000000",
    }
    if fmt in formats:
        return formats[fmt]
    value = ctx.excerpt
    max_len = schema.get("maxLength")
    min_len = schema.get("minLength")
    if isinstance(max_len, int):
        value = value[:max_len]
    if isinstance(min_len, int) and len(value) < min_len:
        value = value + "x" * (min_len - len(value))
    return value


def _value(schema: Any, ctx: _Context, name: str | None = None, depth: int = 0) -> Any:
    if not isinstance(schema, Mapping) or depth > 12:
        return ctx.excerpt if depth <= 12 else None
    schema = _resolve_ref(schema, ctx)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _pick_enum(schema["enum"], ctx)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [
                o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")
            ]
            return _value((non_null or options)[0], ctx, name, depth + 1)
    if isinstance(schema.get("allOf"), list) and schema["allOf"]:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            if isinstance(part, Mapping):
                merged.update(_resolve_ref(part, ctx))
        return _value(merged, ctx, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if kinds else "null"
    if kind is None:
        if "properties" in schema:
            kind = "object"
        elif "items" in schema:
            kind = "array"
    if kind == "object":
        return _object(schema, ctx, depth)
    if kind == "array":
        items = schema.get("items", {})
        if isinstance(items, list):  # tuple form
            return [_value(s, ctx, name, depth + 1) for s in items]
        count = max(1, int(schema.get("minItems", 1) or 1))
        if isinstance(schema.get("maxItems"), int):
            count = min(count, schema["maxItems"])
        return [_value(items, ctx, name, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(_bounded(ctx.number(), schema, integer=True))
    if kind == "number":
        value = _bounded(ctx.number(), schema, integer=False)
        return int(value) if float(value).is_integer() else value
    if kind == "boolean":
        return bool(_YES.search(ctx.text))
    if kind == "null":
        return None
    return _string(schema, ctx, name)


def _object(schema: Mapping[str, Any], ctx: _Context, depth: int) -> dict[str, Any]:
    props = schema.get("properties")
    if isinstance(props, Mapping) and props:
        return {key: _value(sub, ctx, key, depth + 1) for key, sub in props.items()}
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping) and extra:
        return {"key": _value(extra, ctx, "key", depth + 1)}
    return {}


def args_from_schema(schema: Mapping[str, Any] | None, text: str) -> dict[str, Any]:
    """Deterministic arguments that fit a tool's JSON schema for parameters.

    Values come from ``text`` (the last user message) where possible: an enum
    takes the option named in the text (case-insensitive), else the first;
    strings an excerpt of the text; the k-th integer/number field the k-th
    number in the text (else the first number, else 0), within its bounds;
    booleans are True only if the text says "yes" or "true"; arrays get one
    element; nested objects recurse; optional fields are filled too.
    """
    if not schema:
        return {}
    ctx = _Context(text, schema)
    value = _object(_resolve_ref(schema, ctx), ctx, 0)
    return value
