"""A turn's events printed as text: the one printer of ``agentnb chat`` and terminal IPython.

The answer goes to ``out`` as it streams; tool calls, errors, the interrupted
mark and the footer go to ``err`` (the CLI passes stderr, so ``agentnb chat a
"..." > answer.md`` keeps just the answer; a terminal IPython passes stdout
for both). What is printed is what :class:`~agentnb.render.live.LiveTurn`
folds from the events, so the notebook, the panel and the terminal agree.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Callable, TextIO

from ..text import args_text, shorten
from .live import LiveTurn, footer_text

if TYPE_CHECKING:  # pragma: no cover
    from ..events import Event


class TextPrinter:
    """Prints one turn as it arrives (see the module docstring)."""

    def __init__(self, live: LiveTurn, *, session: Any = None, out: TextIO | None = None,
                 err: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 missing_note: Callable[[list[str]], str | None] | None = None,
                 **_: Any) -> None:
        self.live = live
        #: what to say about tools this process cannot run (None: already said)
        self.missing_note = missing_note
        self.session = session
        self.out = out or sys.stdout
        self.err = err or self.out
        self.clock = clock
        self.started = clock()
        self.updates = 0
        self._at_line_start = {id(self.out): True, id(self.err): True}

    def _write(self, stream: TextIO, text: str) -> None:
        if not text:
            return
        if stream is not self.out and not self._at_line_start[id(self.out)]:
            # a side line (tool, footer) after part of the answer: end the answer's line
            self.out.write("\n")
            self.out.flush()
            self._at_line_start[id(self.out)] = True
        stream.write(text)
        stream.flush()
        self._at_line_start[id(stream)] = text.endswith("\n")
        self.updates += 1

    def line(self, text: str) -> None:
        """A side line (on ``err``), on a line of its own."""
        start = "" if self._at_line_start[id(self.err)] else "\n"
        self._write(self.err, start + text + "\n")

    def start(self) -> None:
        """Nothing to draw before the first event (the text view has no placeholder)."""

    def event(self, event: "Event") -> None:
        """Fold one event in and print what it shows."""
        from ..events import (
            ApprovalRequested,
            Token,
            ToolCallFinished,
            ToolCallStarted,
            TurnError,
            TurnStarted,
        )

        if isinstance(event, TurnStarted) and event.missing_tools and self.missing_note:
            note = self.missing_note(list(event.missing_tools))
            if note:
                self.line(f"[note] {note}")
        if not self.live.apply(event):
            return
        if isinstance(event, Token):
            self._write(self.out, event.text)
        elif isinstance(event, (ToolCallStarted, ApprovalRequested)):
            card = self.live.cards[event.call_id]
            self.line(f"[tool] {card.name}({shorten(args_text(card.args), 200)}) …")
        elif isinstance(event, ToolCallFinished):
            self.line(self.live.cards[event.call_id].plain())
        elif isinstance(event, TurnError):
            self.line(f"[error] {event.message}")

    def flush(self) -> None:
        """Everything is printed as it comes: nothing is pending."""

    def finish(self, note: str | None = None) -> None:
        """The interrupted mark, a note, and the footer."""
        if not self._at_line_start[id(self.out)]:
            self._write(self.out, "\n")
        if self.live.interrupted:
            self.line("[interrupted]")
        if note:
            self.line(note)
        seconds = self.clock() - self.started
        self.line("-- " + footer_text(self.live, session=self.session, seconds=seconds,
                                      done=True))


def drive(events: Any, view: Any) -> "tuple[Any, bool]":
    """Feed a turn's events to a view (a printer, a notebook output); (reply, interrupted).

    A KeyboardInterrupt that lands while the view draws (not while the engine
    is awaited) is thrown into the event stream, so the engine still stops the
    turn, stores it and hands back its last events.
    """
    from ..events import TurnFinished

    reply = None
    interrupted = False
    throw = False
    started = False
    while True:
        try:
            event = events.throw(KeyboardInterrupt) if throw else next(events)
        except StopIteration:
            break
        except KeyboardInterrupt:
            interrupted = True
            break
        throw = False
        try:
            if not started:  # the turn is under way: show that at once
                started = True
                view.start()
            if isinstance(event, TurnFinished):
                reply = event.reply
                if reply.status == "interrupted":
                    interrupted = True
            view.event(event)
        except KeyboardInterrupt:
            interrupted = throw = True
    return reply, interrupted


__all__ = ["TextPrinter", "drive"]
