"""The state of a turn while it runs, built from the engine's events.

:class:`LiveTurn` folds the event stream of one turn (tokens, tool calls,
usage, errors) into what a front end draws: the answer's text pieces and the
tool-call cards in the order they happened. The chat panel draws it into its
transcript and ``%%chat`` into the cell's output; both get HTML from it, and
``%%chat`` also gets plain text for terminals, logs and ``text/plain``.

Standard library only (plus :mod:`.markup`): no ipywidgets, no langchain.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..text import args_text, shorten
from .markup import (
    _MUTED,
    _role_html,
    error_html,
    interrupted_html,
    render_markdown,
    tool_card_html,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..events import Event

#: Tool-call statuses that read differently in plain text (the rest read as they are).
_PLAIN_STATUS = {"success": "ok"}


@dataclass
class ToolCard:
    """One tool call as the user sees it: name, arguments, status, result, time."""

    name: str
    args: dict[str, Any]
    status: str = "running"
    output: str | None = None
    error: str | None = None
    ms: float | None = None

    def html(self, *, collapsible: bool = False) -> str:
        return tool_card_html(self.name, self.args, self.status, output=self.output,
                              error=self.error, ms=self.ms, collapsible=collapsible)

    def plain(self) -> str:
        status = _PLAIN_STATUS.get(self.status, self.status)
        timing = f", {self.ms:,.0f} ms" if self.ms is not None else ""
        line = f"[tool] {self.name}({shorten(args_text(self.args), 200)}): {status}{timing}"
        result = self.output if self.status == "success" else (self.error or self.output)
        if result:
            line += f" -> {shorten(result, 200)}"
        return line


@dataclass
class LiveTurn:
    """What the running turn has shown so far: text pieces and tool cards, in order."""

    message: str
    parts: list[Any] = field(default_factory=list)  # str (growing text) or ToolCard
    cards: dict[str, ToolCard] = field(default_factory=dict)
    text_open: bool = False
    error: str | None = None
    interrupted: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""
    tokens_seen: int = 0

    # -- folding events ------------------------------------------------------------
    def add_text(self, text: str) -> None:
        if self.text_open and self.parts and isinstance(self.parts[-1], str):
            self.parts[-1] += text
        else:
            self.parts.append(text)
            self.text_open = True

    def card(self, call_id: str, name: str, args: dict[str, Any]) -> ToolCard:
        if call_id not in self.cards:
            self.cards[call_id] = ToolCard(name, dict(args))
            self.parts.append(self.cards[call_id])
            self.text_open = False
        return self.cards[call_id]

    def apply(self, event: "Event") -> bool:
        """Fold one event in; True when it changed what is shown."""
        from ..events import (
            ApprovalRequested,
            MessageCompleted,
            Token,
            ToolCallFinished,
            ToolCallStarted,
            TurnError,
            TurnStarted,
            Usage,
        )

        if isinstance(event, Token):
            self.tokens_seen += 1
            self.add_text(event.text)
        elif isinstance(event, MessageCompleted):
            self.text_open = False
            return False
        elif isinstance(event, ToolCallStarted):
            self.card(event.call_id, event.tool_name, event.input_args)
        elif isinstance(event, ApprovalRequested):
            self.card(event.call_id, event.tool_name, event.input_args).status = (
                "awaiting approval")
        elif isinstance(event, ToolCallFinished):
            card = self.card(event.call_id, event.tool_name, event.input_args)
            card.status = event.status
            card.output = event.output
            card.error = event.error_message
            card.ms = event.execution_time_ms
        elif isinstance(event, Usage):
            self.input_tokens += event.input_tokens
            self.output_tokens += event.output_tokens
            self.model = event.model or self.model
        elif isinstance(event, TurnStarted):
            self.model = event.model
            return False
        elif isinstance(event, TurnError):
            self.error = event.message
        else:
            return False
        return True

    # -- what it looks like ------------------------------------------------------------
    @property
    def text(self) -> str:
        """The assistant's text so far (all text pieces, in order)."""
        return "\n\n".join(p for p in self.parts if isinstance(p, str))

    def body_html(self, *, collapsible: bool = False, placeholder: bool = True,
                  render_text: Callable[[int, str], str] | None = None,
                  text_class: str = "agentnb-chat-text", note: str | None = None) -> str:
        """The answer and the cards as HTML, with the interrupted / error marks.

        ``render_text(index, text)``: the HTML of the text piece at ``index``
        (default: its Markdown), so a caller can cache pieces that stopped
        growing; ``note``: a muted line after everything else.
        """
        body = []
        for i, part in enumerate(self.parts):
            if isinstance(part, str):
                inner = render_text(i, part) if render_text else render_markdown(part)
                body.append(f'<div class="{text_class}">{inner}</div>')
            else:
                body.append(part.html(collapsible=collapsible))
        if self.interrupted:
            body.append(interrupted_html())
        if self.error:
            body.append(error_html(self.error))
        if note:
            body.append(f'<div class="agentnb-chat-note" style="{_MUTED}">{html.escape(note)}'
                        "</div>")
        if not body and placeholder:
            body.append(f'<div class="agentnb-chat-waiting" style="{_MUTED}">…</div>')
        return "".join(body)

    def html(self, agent_name: str) -> str:
        """The user's message and the answer so far, as the panel's transcript shows them."""
        return (_role_html("user", "You", render_markdown(self.message))
                + _role_html("assistant", agent_name, self.body_html()))

    def plain(self) -> str:
        """The answer and the tool calls as plain text, in order."""
        out = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else part.plain())
        if self.interrupted:
            out.append("[interrupted]")
        if self.error:
            out.append(f"[error] {self.error}")
        return "\n\n".join(p.strip("\n") for p in out if p)


def footer_text(live: LiveTurn, *, session: Any, seconds: float | None, done: bool) -> str:
    """The line under a turn: model, tokens, tool calls, session, seconds (and "streaming…")."""
    parts = [live.model or "model"]
    if done or live.input_tokens or live.output_tokens:
        parts.append(f"{live.input_tokens:,} in / {live.output_tokens:,} out tokens")
    else:  # providers report usage at the end of a stream: count what arrived
        parts.append(f"{live.tokens_seen:,} tokens so far")
    if live.cards:
        n = len(live.cards)
        parts.append(f"{n} tool call{'s' if n != 1 else ''}")
    if session is not None:
        parts.append(f"session {str(session)[:8]}")
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    if not done:
        parts.append("streaming…")
    return " · ".join(parts)


__all__ = ["LiveTurn", "ToolCard", "footer_text"]
