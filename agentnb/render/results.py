"""Result objects the commands return: HTML in a notebook, text in a terminal, JSON.

Every command of :mod:`agentnb.commands` returns one of these. Each has
``_repr_html_`` (or ``_repr_markdown_``) for Jupyter, :meth:`Result.to_text`
(also its ``repr``) for a terminal, a log or the CLI, and :meth:`Result.to_json`
for ``--json`` and HTTP, so one return value serves every front end. Every
piece of user data is passed through :func:`html.escape` before it reaches HTML.

One rule formats a value in a table or a key-value list (:func:`format_cell`):
integers with thousands separators, ``None`` as ``-``, times to the minute.

Only the standard library is imported here: the extension loads this module
without paying for pandas or ipywidgets.
"""

from __future__ import annotations

import html
from datetime import date, datetime
from typing import Any, Iterable, Sequence

from ..text import args_text, shorten

_TABLE_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL_STYLE = "padding:2px 8px;text-align:{align};vertical-align:top"
_CAPTION_STYLE = "caption-side:top;text-align:left;font-weight:bold;padding:2px 0"


#: How a missing value (None) reads in a table.
MISSING = "-"


def format_cell(value: Any) -> str:
    """The text a table shows for one value (the one rule of every front end).

    ``None`` -> ``-``; booleans -> yes/no; datetimes to the minute; integers
    with thousands separators; floats to 6 significant digits; lists joined.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(format_cell(v) for v in value) or MISSING
    if isinstance(value, dict):
        return ", ".join(f"{k}={v!r}" for k, v in value.items()) or MISSING
    return str(value)


def to_jsonable(value: Any) -> Any:
    """``value`` with datetimes, UUIDs, paths and pydantic models made JSON-friendly."""
    import uuid
    from pathlib import PurePath

    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return value


class Result:
    """Base of the result objects: text (also the repr), HTML, JSON, and plain data.

    ``data``: what ``--json`` and HTTP return (default: derived from what is shown).
    """

    data: Any = None

    def to_text(self) -> str:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def to_json(self) -> Any:
        return to_jsonable(self.data)

    def __repr__(self) -> str:
        return self.to_text()

    def __str__(self) -> str:
        return self.to_text()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Table(Result):
    """Rows under named columns; numbers are right-aligned.

    ``columns`` and ``rows`` stay available as attributes, so a caller can
    turn the table into a DataFrame (``pd.DataFrame(t.rows, columns=t.columns)``).
    """

    def __init__(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        title: str | None = None,
        *,
        empty: str = "(none)",
        data: Any = None,
    ) -> None:
        self.columns = list(columns)
        self.rows = [list(r) for r in rows]
        self.title = title
        self.empty = empty
        self.data = data
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"row has {len(row)} values for {len(self.columns)} columns")

    def __len__(self) -> int:
        return len(self.rows)

    def to_json(self) -> Any:
        if self.data is not None:
            return to_jsonable(self.data)
        return [to_jsonable(dict(zip(self.columns, row))) for row in self.rows]

    def _numeric_columns(self) -> list[bool]:
        return [
            bool(self.rows) and all(_is_number(r[i]) or r[i] is None for r in self.rows)
            for i in range(len(self.columns))
        ]

    def _repr_html_(self) -> str:
        numeric = self._numeric_columns()
        parts = [f'<table class="agentnb-table" style="{_TABLE_STYLE}">']
        if self.title:
            parts.append(f'<caption style="{_CAPTION_STYLE}">{html.escape(self.title)}</caption>')
        parts.append("<thead><tr>")
        for col, num in zip(self.columns, numeric):
            style = _CELL_STYLE.format(align="right" if num else "left")
            parts.append(
                f'<th style="{style};border-bottom:1px solid #999">{html.escape(col)}</th>'
            )
        parts.append("</tr></thead><tbody>")
        if not self.rows:
            parts.append(
                f'<tr><td colspan="{max(len(self.columns), 1)}" style="padding:2px 8px;'
                f'color:#777">{html.escape(self.empty)}</td></tr>'
            )
        for row in self.rows:
            parts.append("<tr>")
            for value, num in zip(row, numeric):
                style = _CELL_STYLE.format(align="right" if num else "left")
                parts.append(f'<td style="{style}">{html.escape(format_cell(value))}</td>')
            parts.append("</tr>")
        parts.append("</tbody></table>")
        return "".join(parts)

    def to_text(self) -> str:
        numeric = self._numeric_columns()
        cells = [[format_cell(v) for v in row] for row in self.rows]
        widths = [
            max([len(col)] + [len(row[i]) for row in cells]) for i, col in enumerate(self.columns)
        ]

        def line(values: Sequence[str]) -> str:
            out = []
            for value, width, num in zip(values, widths, numeric):
                out.append(value.rjust(width) if num else value.ljust(width))
            return "  ".join(out).rstrip()

        lines = [self.title] if self.title else []
        lines.append(line(self.columns))
        lines.append("  ".join("-" * w for w in widths))
        lines.extend(line(row) for row in cells)
        if not cells:
            lines.append(self.empty)
        return "\n".join(lines)


class KeyValues(Result):
    """Labelled values, one per line (an agent's config, the status)."""

    def __init__(self, items: Iterable[tuple[str, Any]], title: str | None = None, *,
                 data: Any = None) -> None:
        self.items = [(str(k), v) for k, v in items]
        self.title = title
        self.data = data

    def to_json(self) -> Any:
        if self.data is not None:
            return to_jsonable(self.data)
        return {k: to_jsonable(v) for k, v in self.items}

    def __getitem__(self, key: str) -> Any:
        for k, v in self.items:
            if k == key:
                return v
        raise KeyError(key)

    def _repr_html_(self) -> str:
        parts = [f'<table class="agentnb-kv" style="{_TABLE_STYLE}">']
        if self.title:
            parts.append(f'<caption style="{_CAPTION_STYLE}">{html.escape(self.title)}</caption>')
        for key, value in self.items:
            parts.append(
                f'<tr><th style="{_CELL_STYLE.format(align="left")};color:#555">'
                f"{html.escape(key)}</th>"
                f'<td style="{_CELL_STYLE.format(align="left")};white-space:pre-wrap">'
                f"{html.escape(format_cell(value))}</td></tr>"
            )
        parts.append("</table>")
        return "".join(parts)

    def to_text(self) -> str:
        width = max((len(k) for k, _ in self.items), default=0)
        lines = [self.title] if self.title else []
        for key, value in self.items:
            text = format_cell(value).splitlines() or [""]
            lines.append(f"{key.ljust(width)}  {text[0]}".rstrip())
            lines.extend(" " * (width + 2) + cont for cont in text[1:])
        return "\n".join(lines)


class Notice(Result):
    """A one-line outcome ("created agent 'calc'"), or a warning."""

    _COLORS = {"info": "#2a7ae2", "success": "#2e9d4e", "warning": "#c77c02"}

    def __init__(self, text: str, level: str = "info", *, detail: str | None = None,
                 data: Any = None) -> None:
        self.text = text
        self.level = level if level in self._COLORS else "info"
        self.detail = detail
        self.data = data

    def to_json(self) -> Any:
        if self.data is not None:
            return to_jsonable(self.data)
        return {"message": self.text}

    def _repr_html_(self) -> str:
        color = self._COLORS[self.level]
        detail = (
            f'<div style="color:#666;font-size:0.9em">{html.escape(self.detail)}</div>'
            if self.detail
            else ""
        )
        return (
            f'<div class="agentnb-notice" style="border-left:3px solid {color};'
            f'padding:2px 8px">{html.escape(self.text)}{detail}</div>'
        )

    def to_text(self) -> str:
        prefix = "warning: " if self.level == "warning" else ""
        return prefix + self.text + (f"\n{self.detail}" if self.detail else "")


class SecretNotice(Result):
    """A secret shown once (a new API key), with a warning; never stored by agentnb."""

    def __init__(self, label: str, secret: str, warning: str, *, data: Any = None) -> None:
        self.label = label
        self.secret = secret
        self.warning = warning
        self.data = data

    def _repr_html_(self) -> str:
        return (
            '<div class="agentnb-secret" style="border-left:3px solid #c77c02;padding:2px 8px">'
            f"{html.escape(self.label)}<br><code style=\"user-select:all\">"
            f"{html.escape(self.secret)}</code>"
            f'<div style="color:#a15c00;font-size:0.9em">{html.escape(self.warning)}</div></div>'
        )

    def to_text(self) -> str:
        return f"{self.label}\n  {self.secret}\n{self.warning}"


class BarChart(Result):
    """Horizontal bars drawn with HTML/CSS (or block characters in a terminal)."""

    def __init__(
        self,
        labels: Sequence[str],
        values: Sequence[float],
        title: str | None = None,
        *,
        unit: str = "",
        width: int = 40,
    ) -> None:
        self.labels = [str(label) for label in labels]
        self.values = [float(v or 0) for v in values]
        self.title = title
        self.unit = unit
        self.width = width

    def to_json(self) -> Any:
        return [{"label": label, "value": value} for label, value in zip(self.labels, self.values)]

    def _fraction(self, value: float) -> float:
        top = max(self.values, default=0.0)
        return value / top if top > 0 else 0.0

    def _repr_html_(self) -> str:
        parts = ['<div class="agentnb-bars" style="font-size:0.9em">']
        if self.title:
            parts.append(f'<div style="font-weight:bold">{html.escape(self.title)}</div>')
        for label, value in zip(self.labels, self.values):
            pct = round(self._fraction(value) * 100, 1)
            parts.append(
                '<div style="display:flex;align-items:center;gap:6px;margin:1px 0">'
                f'<span style="width:7em;text-align:right">{html.escape(label)}</span>'
                f'<span style="display:inline-block;height:0.9em;width:{pct}%;max-width:60%;'
                'background:#2a7ae2"></span>'
                f"<span>{html.escape(format_cell(int(value)))} {html.escape(self.unit)}</span>"
                "</div>"
            )
        parts.append("</div>")
        return "".join(parts)

    def to_text(self) -> str:
        width = max((len(label) for label in self.labels), default=0)
        lines = [self.title] if self.title else []
        for label, value in zip(self.labels, self.values):
            bar = "█" * round(self._fraction(value) * self.width)
            amount = f"{format_cell(int(value))} {self.unit}"
            lines.append(f"{label.rjust(width)}  {bar} {amount}".rstrip())
        return "\n".join(lines)


def call_line(call: Any, width: int = 80) -> str:
    """A stored tool call on one line: ``add(a=2, b=3) -> success, 3 ms: 5``."""
    args = args_text(call.input_args)
    result = shorten(call.output if call.status == "success" else (call.error_message or ""),
                     width)
    timing = f", {call.execution_time_ms:,.0f} ms" if call.execution_time_ms is not None else ""
    return f"{call.tool_name}({shorten(args, width)}) -> {call.status}{timing}" + (
        f": {result}" if result else "")


class Transcript(Result):
    """A conversation, drawn as the chat panel draws it; one line per tool call in text.

    ``messages`` are :class:`~agentnb.schemas.MessageRecord` objects (or
    anything with ``role``, ``content``, ``tool_calls``, ``status``). Tool-result
    messages are shown with the call that produced them. Roles are styled
    labels, not headings, so a notebook's table of contents does not fill up
    with "You" and "Assistant"; an interrupted or failed answer is marked in
    both faces.
    """

    def __init__(self, messages: Sequence[Any], title: str | None = None,
                 agent_name: str = "assistant") -> None:
        self.messages = list(messages)
        self.title = title
        self.agent_name = agent_name

    def to_json(self) -> Any:
        return [to_jsonable(m) for m in self.messages]

    @staticmethod
    def _call_line(call: Any) -> str:
        return call_line(call)

    def _visible(self) -> list[Any]:
        return [m for m in self.messages if m.role != "tool"]

    def _repr_html_(self) -> str:
        from .markup import _MUTED, messages_html

        out = ['<div class="agentnb-transcript">']
        if self.title:
            out.append(f'<div class="agentnb-transcript-title" style="font-weight:bold">'
                       f"{html.escape(self.title)}</div>")
        body = messages_html(self.messages, self.agent_name)
        out.append(body or f'<div style="{_MUTED};font-style:italic">(no messages yet)</div>')
        out.append("</div>")
        return "".join(out)

    def to_text(self) -> str:
        lines = [self.title] if self.title else []
        if not self.messages:
            lines.append("(no messages yet)")
        width = max((len(m.role) for m in self._visible()), default=0)
        for m in self._visible():
            text = (m.content or "").splitlines() or [""]
            lines.append(f"{m.role.rjust(width)}: {text[0]}".rstrip())
            lines.extend(" " * (width + 2) + cont for cont in text[1:])
            for call in getattr(m, "tool_calls", ()) or ():
                lines.append(" " * (width + 2) + "tool " + self._call_line(call))
            status = getattr(m, "status", "complete")
            if status == "interrupted":
                lines.append(" " * (width + 2) + "[interrupted]")
            elif status == "error":
                error = (getattr(m, "attrs", None) or {}).get("error") or "the turn failed"
                lines.append(" " * (width + 2) + f"[error] {shorten(str(error), 200)}")
        return "\n".join(lines)


class Stack(Result):
    """Several results shown one after the other (``%agent show``, ``usage``)."""

    def __init__(self, *parts: Any, title: str | None = None, data: Any = None) -> None:
        self.parts = [p for p in parts if p is not None]
        self.title = title
        self.data = data

    def to_json(self) -> Any:
        if self.data is not None:
            return to_jsonable(self.data)
        return [p.to_json() if isinstance(p, Result) else to_jsonable(p) for p in self.parts]

    def _repr_html_(self) -> str:
        # a styled title, not <h4>: headings in outputs would fill the table of contents
        out = ([f'<div class="agentnb-title" style="font-weight:bold;margin:4px 0">'
                f"{html.escape(self.title)}</div>"] if self.title else [])
        for part in self.parts:
            if hasattr(part, "_repr_html_"):
                out.append(part._repr_html_())
            else:
                out.append(f"<pre>{html.escape(repr(part))}</pre>")
            out.append('<div style="height:0.6em"></div>')
        return "".join(out)

    def to_text(self) -> str:
        blocks = [self.title] if self.title else []
        blocks.extend(repr(p) for p in self.parts)
        return "\n\n".join(blocks)


class TextResult(str):
    """Text that is also shown as text: a real ``str`` (``s = %agent export``).

    IPython shows a plain ``str`` as its quoted repr; this subclass prints
    the text itself; a notebook shows it as a fenced block of its source.
    """

    markdown: bool

    def __new__(cls, text: str, *, markdown: bool = False, language: str = "") -> "TextResult":
        obj = super().__new__(cls, text)
        obj.markdown = markdown
        obj.language = language
        return obj

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def to_text(self) -> str:
        return str.__str__(self)

    def to_json(self) -> Any:
        return str.__str__(self)

    def _repr_markdown_(self) -> str:
        # Shown as its source, Markdown exports too: rendered, an export's "## User" /
        # "## Assistant" headings would fill the notebook's table of contents.
        fence = "````" if "```" in self else "```"
        return f"{fence}{self.language}\n{self}\n{fence}"


__all__ = [
    "MISSING",
    "Result",
    "call_line",
    "to_jsonable",
    "BarChart",
    "KeyValues",
    "Notice",
    "SecretNotice",
    "Stack",
    "Table",
    "TextResult",
    "Transcript",
    "format_cell",
    "shorten",
]
