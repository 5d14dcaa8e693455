"""HTML pieces of a chat: messages, tool-call cards, status lines.

Shared by everything that draws a conversation in a notebook: the ``%%chat``
cell output, the :class:`~agentnb.notebook.panel.ChatPanel` transcript and
the session browser. Only the standard library (and markdown-it-py, on first
use) is imported, so ``%%chat`` does not pay for ipywidgets.

Every piece of user and model text is rendered with markdown-it-py with raw
HTML disabled (or escaped into ``<pre>`` without it): both the notebook's
HTML output and the HTML widget set ``innerHTML`` unsanitized in the browser.
"""

from __future__ import annotations

import functools
import html
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import error_text  # noqa: F401  (re-exported for the widgets)
from ..text import args_text, shorten

if TYPE_CHECKING:  # pragma: no cover
    from ..schemas import MessageRecord, SessionSummary

_STATUS_COLORS = {
    "pending": "#777",
    "running": "#2a7ae2",
    "awaiting approval": "#c77c02",
    "success": "#2e9d4e",
    "error": "#d32f2f",
    "timeout": "#d32f2f",
    "denied": "#c77c02",
    "interrupted": "#777",
}
_MUTED = "color:var(--jp-ui-font-color2,#777)"
_ERROR_STYLE = "color:var(--jp-error-color1,#d32f2f)"


#: Icons as inline SVG paths (24x24 view box; Material Icons' "build" and "warning",
#: Apache-2.0), drawn in the text's colour: an emoji (🔧, ⏹) is an empty box on a
#: machine without an emoji font, an SVG renders everywhere.
_ICONS = {
    "wrench": ("M22.7 19l-9.1-9.1c.9-2.3.4-5-1.5-6.9-2-2-5-2.4-7.4-1.3L9 6 6 9 1.6 4.7C.4 "
               "7.1.9 10.1 2.9 12.1c1.9 1.9 4.6 2.4 6.9 1.5l9.1 9.1c.4.4 1 .4 1.4 0l2.3-2.3c.5"
               "-.4.5-1.1.1-1.4z"),
    "stop": "M6 6h12v12H6z",
    "warning": "M1 21h22L12 2 1 21zm12-3h-2v-2h2v2zm0-4h-2v-4h2v4z",
}


def icon(name: str, *, label: str | None = None) -> str:
    """A small inline SVG icon (``wrench``, ``stop``, ``warning``) in the current colour."""
    aria = (f'role="img" aria-label="{html.escape(label)}"' if label
            else 'aria-hidden="true"')
    return (f'<svg class="agentnb-icon agentnb-icon-{name}" {aria} viewBox="0 0 24 24" '
            'width="1em" height="1em" fill="currentColor" '
            'style="vertical-align:-0.125em;display:inline-block">'
            f'<path d="{_ICONS[name]}"/></svg>')


@functools.lru_cache(maxsize=1)
def _markdown_parser() -> Any:
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    # html=False: raw HTML in a message is shown as text, never injected.
    parser = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(
        ["table", "strikethrough"]
    )
    # A "# Title" in a message is drawn bold, not as <h1>: JupyterLab's table of
    # contents lists every heading of every output, and a chat is not the
    # notebook's outline.
    parser.add_render_rule("heading_open", _heading_open)
    parser.add_render_rule("heading_close", lambda self, tokens, idx, options, env: "</p>")
    return parser


_HEADING_SIZES = {"h1": "1.3em", "h2": "1.2em", "h3": "1.1em"}


def _heading_open(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    tag = tokens[idx].tag
    size = _HEADING_SIZES.get(tag, "1em")
    return (f'<p class="agentnb-heading" role="heading" aria-level="{tag[1:]}" '
            f'style="font-weight:bold;font-size:{size};margin:0.6em 0 0.3em 0">')


def render_markdown(text: str) -> str:
    """HTML for Markdown ``text``; raw HTML in it is escaped, never rendered."""
    parser = _markdown_parser()
    if parser is None:
        return f'<pre style="white-space:pre-wrap;margin:0">{html.escape(text)}</pre>'
    return parser.render(text)


def tool_card_html(name: str, args: dict[str, Any] | None, status: str, *,
                   output: str | None = None, error: str | None = None,
                   ms: float | None = None, collapsible: bool = False) -> str:
    """One tool call as a card: name, arguments, status, result or error, time.

    ``collapsible``: a ``<details>`` element whose summary line is the call
    and whose body is the result, open while it runs and when it failed (a
    ``%%chat`` cell keeps a long result out of the way).
    """
    color = _STATUS_COLORS.get(status, "#777")
    timing = f' <span style="{_MUTED}">{ms:,.0f} ms</span>' if ms is not None else ""
    head = (
        f'<b>{icon("wrench", label="tool")} {html.escape(name)}</b>(<code>{html.escape(shorten(args_text(args), 200))}'
        f'</code>) <span class="agentnb-tool-status" style="color:{color};font-weight:bold">'
        f"{html.escape(status)}</span>{timing}"
    )
    body = ""
    text = output if status == "success" else (error or output)
    if text:
        if len(text) > 2000:
            text = text[:2000] + " …"
        body = (
            '<pre class="agentnb-tool-result" style="white-space:pre-wrap;margin:2px 0 0 0;'
            f'max-height:12em;overflow:auto;font-size:0.95em">{html.escape(text)}</pre>'
        )
    style = (
        f'border:1px solid var(--jp-border-color2,#ddd);border-left:3px solid {color};'
        'border-radius:3px;padding:3px 8px;margin:4px 0;font-size:0.9em;'
        'background:var(--jp-layout-color2,#f7f7f7)'
    )
    attrs = f'class="agentnb-tool-card" data-status="{html.escape(status)}" style="{style}"'
    if collapsible:
        is_open = " open" if status not in ("success", "denied") else ""
        return (f"<details {attrs}{is_open}><summary style=\"cursor:pointer\">{head}</summary>"
                f"{body}</details>")
    return f"<div {attrs}><div>{head}</div>{body}</div>"


def _role_html(role: str, label: str | None, body: str) -> str:
    color = "#2a7ae2" if role == "user" else "#2e9d4e" if role == "assistant" else "#777"
    head = (
        f'<div style="font-weight:bold;color:{color};font-size:0.85em">{html.escape(label)}</div>'
        if label is not None else ""
    )
    margin = "6px 0" if label is not None else "0 0 6px 0"
    return (
        f'<div class="agentnb-msg agentnb-msg-{role}" style="margin:{margin}">{head}{body}</div>'
    )


def interrupted_html() -> str:
    return (f'<div class="agentnb-interrupted" style="{_MUTED};font-style:italic">'
            f'{icon("stop")} interrupted</div>')


def error_html(text: str) -> str:
    return (f'<div class="agentnb-error" style="{_ERROR_STYLE}">{icon("warning")} '
            f"{html.escape(text)}</div>")


def message_html(m: "MessageRecord", agent_name: str = "assistant", *,
                 heading: bool = True) -> str:
    """One stored message: role, Markdown content, tool cards, status marks."""
    if m.role == "tool":
        return ""  # shown in the card of the call that produced it
    label = {"user": "You", "assistant": agent_name, "system": "system"}.get(m.role, m.role)
    parts = [render_markdown(m.content)] if m.content else []
    for call in m.tool_calls:
        parts.append(tool_card_html(call.tool_name, call.input_args, call.status,
                                    output=call.output, error=call.error_message,
                                    ms=call.execution_time_ms))
    if m.status == "interrupted":
        parts.append(interrupted_html())
    elif m.status == "error":
        parts.append(error_html(str(m.attrs.get("error") or "the turn failed")))
    if not parts:
        return ""
    return _role_html(m.role, label if heading else None, "".join(parts))


def messages_html(messages: Iterable["MessageRecord"], agent_name: str = "assistant") -> str:
    """Stored messages as HTML, oldest first; one heading per run of assistant messages."""
    out = []
    previous = None
    for m in messages:
        piece = message_html(m, agent_name, heading=not (m.role == "assistant"
                                                         and previous == "assistant"))
        if piece:
            out.append(piece)
            previous = m.role
    return "".join(out)


def scroll_box(inner: str, *, height: str = "26em") -> str:
    """A scrolling box that stays anchored at its bottom as content grows."""
    # column-reverse keeps the scroll position at the bottom without JavaScript.
    return (
        f'<div class="agentnb-scroll" style="max-height:{height};overflow-y:auto;'
        'display:flex;flex-direction:column-reverse;padding:0 4px">'
        f"<div>{inner}</div></div>"
    )


def session_label(summary: "SessionSummary") -> str:
    """How a session reads in a picker: date, first message, turns."""
    when = summary.last_activity or summary.session.updated_at
    first = summary.session.title or summary.first_message or "(empty)"
    turns = f"{summary.turns} turn{'s' if summary.turns != 1 else ''}"
    # short enough that the whole label fits the panel's picker: a long title ends with "…"
    return f"{when:%Y-%m-%d %H:%M} · {shorten(first, 28)} · {turns}"


__all__ = [
    "args_text",
    "error_html",
    "error_text",
    "icon",
    "interrupted_html",
    "message_html",
    "messages_html",
    "render_markdown",
    "scroll_box",
    "session_label",
    "tool_card_html",
]
