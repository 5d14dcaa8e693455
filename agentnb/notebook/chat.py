"""``%%chat``: send a cell to an agent and stream the answer into the cell's output.

::

    %%chat [NAME] [-s SESSION] [--new] [--model SPEC] [--format markdown|text|code|json]
           [--schema NAME] [--no-stream] [--no-tools]
    What is add(a=2, b=3)? The data is {df_name}.

One turn of the agent (the current one, or NAME, which becomes current) in
its current session (or ``-s`` / ``--new``). The answer streams into one
output that is updated in place, at most ``AgentMagics.stream_rate`` times a
second however fast tokens come; each tool call is a collapsible card in
that output (running, ok, error, denied, with its result and time), and a
footer gives the model, tokens and session. In a terminal IPython the answer
is printed as it arrives instead (and no empty ``Out[n]:`` follows it; ``_``
still holds the Reply).

The cell's result is the :class:`~agentnb.events.Reply` (``_`` holds it,
``_.text``, ``_.tool_calls``); with ``--schema`` it is the validated
instance. ``--format code`` puts the answer's code into a new cell below.
A tool that needs approval asks at an input prompt (the chat panel has
buttons). Interrupting the kernel stops the turn: the partial answer is
shown and stored, marked interrupted, and the ``KeyboardInterrupt`` stops a
"run all" as usual.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
import uuid
from collections import ChainMap
from typing import TYPE_CHECKING, Any, Callable, Literal

from IPython.core.error import UsageError
from pydantic import BaseModel, PrivateAttr

from ..commands import base as cmds
from ..commands.chat import ChatArgs, plan_turn
from ..events import Reply
from ..render.live import LiveTurn, footer_text
from ..render.markup import _MUTED, render_markdown
from ..render.printer import TextPrinter, drive
from ..text import args_text, excerpt, shorten
from .interpolate import interpolate
from .parsing import user_errors

if TYPE_CHECKING:  # pragma: no cover
    from ..events import ApprovalRequested, Event
    from .magics import AgentMagics

PROG = "%%chat"
Format = Literal["markdown", "text", "code", "json"]


class TurnInterrupted(KeyboardInterrupt):
    """Ctrl-C / "interrupt kernel" stopped a ``%%chat`` turn.

    A KeyboardInterrupt, so that "run all" stops as it does for any cell; shown
    as one line (the partial answer is right above it), not a traceback
    through agentnb's code.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"KeyboardInterrupt: {self}"]


# -- the cell's arguments ---------------------------------------------------------------
FRONT = "cell"  # the %%chat line: the chat command's arguments, as a cell writes them
USAGE = ("%%chat [NAME] [-s SESSION] [--new] [--model SPEC] "
         "[--format markdown|text|code|json] [--schema NAME] [--no-stream] [--no-tools]")
DESCRIPTION = (
    "Send the cell to an agent and stream its answer into the output.\n"
    "{var} puts in a notebook variable ({In[n]}, {Out[n]}, {Err} too); {{ and }} are "
    "literal braces; an unknown {name} stays as written.")


def _chat_command() -> cmds.Command:
    return cmds.REGISTRY["chat"]


def chat_help() -> str:
    """``%%chat --help``."""
    parser = cmds.build_parser(_chat_command(), FRONT, prog=PROG, usage=USAGE)
    parser.description = DESCRIPTION
    return parser.format_help().rstrip()


def parse_chat_line(line: str) -> ChatArgs | None:
    """The ``%%chat`` line as :class:`ChatArgs`; None after printing ``--help``."""
    with user_errors():
        tokens = cmds.split_line(line, PROG)
        if cmds.wants_help(tokens):
            print(chat_help())
            return None
        args = cmds.parse_tokens(_chat_command(), FRONT, tokens, prog=PROG)
        if args.session and args.new:
            raise cmds.UsageProblem("%%chat: use either -s SESSION or --new, not both")
    return args  # type: ignore[return-value]


# -- the result -------------------------------------------------------------------------
class ChatReply(Reply):
    """A Reply that ``%%chat`` has shown already while it streamed.

    IPython displays a cell's result; the streamed output already is that
    display, so the first display (the cell's own) is skipped. Displaying it
    again later (``_`` in another cell, ``display(reply)``) shows the answer
    with its tool calls.
    """

    _shown_live: bool = PrivateAttr(default=False)

    @classmethod
    def of(cls, reply: Reply, *, shown_live: bool) -> "ChatReply":
        """``reply`` as a ChatReply (same fields), marked as displayed or not."""
        out = cls.model_construct(**dict(reply))
        out._shown_live = shown_live
        return out

    def _ipython_display_(self) -> None:
        if self._shown_live:
            self._shown_live = False
            return
        from IPython.display import display

        live = LiveTurn(message="", model=self.model)
        for call in self.tool_calls:
            card = live.card(str(call.id), call.tool_name, call.input_args)
            card.status, card.output = call.status, call.output
            card.error, card.ms = call.error_message, call.execution_time_ms
        live.add_text(self.text)
        live.interrupted = self.status == "interrupted"
        live.error = self.error if self.status == "error" else None
        live.input_tokens = self.usage.input_tokens
        live.output_tokens = self.usage.output_tokens
        display(_bundle(live, agent=self.agent, session=self.session_id, fmt="markdown",
                        done=True), raw=True)


# -- rendering --------------------------------------------------------------------------
class _TextCache:
    """Rendered HTML of text pieces, so a growing answer re-renders only its last piece."""

    def __init__(self, render: Callable[[str], str]) -> None:
        self.render = render
        self.done: dict[int, tuple[int, str]] = {}

    def html(self, index: int, text: str) -> str:
        cached = self.done.get(index)
        if cached is not None and cached[0] == len(text):
            return cached[1]
        out = self.render(text)
        self.done[index] = (len(text), out)
        return out


def _text_html(fmt: str) -> Callable[[str], str]:
    if fmt == "text":
        return lambda text: (f'<pre style="white-space:pre-wrap;margin:0">'
                             f"{html.escape(text)}</pre>")
    return render_markdown


def _bundle(live: LiveTurn, *, agent: str, session: Any, fmt: str, done: bool,
            seconds: float | None = None, note: str | None = None,
            cache: _TextCache | None = None) -> dict[str, str]:
    """The output's MIME bundle: HTML for Jupyter, plain text for everything else."""
    cache = cache or _TextCache(_text_html(fmt))
    body = live.body_html(collapsible=True, render_text=cache.html,
                          text_class="agentnb-chat-answer", note=note)
    footer = footer_text(live, session=session, seconds=seconds, done=done)
    status = ("interrupted" if live.interrupted else "error" if live.error
              else "complete" if done else "streaming")
    page = (
        f'<div class="agentnb-chat" data-status="{status}" data-agent="{html.escape(agent)}">'
        + body
        + f'<div class="agentnb-chat-footer" style="{_MUTED};font-size:0.85em;margin-top:4px">'
        f"{html.escape(footer)}</div></div>"
    )
    if done:
        plain = live.plain() or "…"
        if note:
            plain += f"\n\n{note}"
    else:
        # While it streams, front ends without HTML get a short progress line:
        # re-sending the whole answer as text too would double every update.
        plain = f"{agent} is answering… ({live.tokens_seen:,} tokens so far)"
    return {"text/html": page, "text/plain": f"{plain}\n\n-- {footer}"}


#: Most bytes a second the streaming output sends to the browser (see RichView).
MAX_BYTES_PER_SECOND = 256_000


class RichView:
    """Draws the turn into one notebook output, updated in place at a capped rate.

    Every update replaces the whole output, so a long answer costs more bytes
    per update as it grows. Updates are spaced by at least ``1 / rate``
    seconds, and also by the time the last one's size takes at
    ``MAX_BYTES_PER_SECOND``: a 50 KB answer (about 8,000 words) is redrawn
    about 5 times a second, and the kernel, the server and the browser never
    see more than ~256 KB/s from one chat, however long it grows.
    """

    def __init__(self, live: LiveTurn, *, agent: str, session: Any, fmt: str, rate: float,
                 stream: bool = True, clock: Callable[[], float] = time.monotonic,
                 shell: Any = None, max_bytes_per_second: float = MAX_BYTES_PER_SECOND,
                 missing_note: Callable[[list[str]], str | None] | None = None,
                 ) -> None:
        self.live = live
        self.missing_note = missing_note
        #: a line under the answer about tools this kernel cannot run (said once a session)
        self.tools_note: str | None = None
        self.shell = shell
        self.agent = agent
        self.session = session
        self.fmt = fmt
        self.interval = 1.0 / rate
        self.max_bytes_per_second = max_bytes_per_second
        self.stream = stream
        self.bytes_sent = 0  #: HTML and text sent, all updates together
        self._wait = self.interval
        self.clock = clock
        self.started = clock()
        self.cache = _TextCache(_text_html(fmt))
        self.updates = 0  #: display updates sent (the first display included)
        self._last = float("-inf")
        self._dirty = False
        self.display_id = uuid.uuid4().hex

    def _publisher(self) -> Any:
        shell = self.shell
        if shell is None:
            from IPython.core.interactiveshell import InteractiveShell

            shell = InteractiveShell.instance()
        return shell.display_pub

    def _send(self, *, done: bool = False, note: str | None = None) -> None:
        if self.tools_note:
            note = f"{self.tools_note}\n{note}" if note else self.tools_note
        bundle = _bundle(self.live, agent=self.agent, session=self.session, fmt=self.fmt,
                         done=done, seconds=self.clock() - self.started if done else None,
                         note=note, cache=self.cache)
        # What IPython's DisplayHandle does, on the magic's own shell: the first
        # message creates the output, the next ones replace it in place.
        self._publisher().publish(data=bundle, metadata={},
                                  transient={"display_id": self.display_id},
                                  update=self.updates > 0)
        self.updates += 1
        size = sum(len(v) for v in bundle.values())
        self.bytes_sent += size
        self._wait = max(self.interval, size / self.max_bytes_per_second)
        self._last = self.clock()
        self._dirty = False

    def start(self) -> None:
        self._send()

    def event(self, event: "Event") -> None:
        from ..events import Token, TurnStarted, Usage

        if isinstance(event, TurnStarted) and event.missing_tools and self.missing_note:
            self.tools_note = self.missing_note(list(event.missing_tools))
        if not self.live.apply(event):
            return
        self._dirty = True
        if not self.stream:
            return
        # Tokens (and the footer's token counts) are coalesced; anything else (a
        # tool card changing, an error) shows at once.
        if not isinstance(event, (Token, Usage)) or self.clock() - self._last >= self._wait:
            self._send()

    def flush(self) -> None:
        """Show what is pending now (before waiting on the user, say)."""
        if self._dirty:
            self._send()

    def finish(self, note: str | None = None) -> None:
        self._send(done=True, note=note)


#: The terminal view of ``%%chat`` is the CLI's printer (answer and side lines on stdout).
TextView = TextPrinter


# -- approval ---------------------------------------------------------------------------
def ask_approval(event: "ApprovalRequested") -> bool:
    """Ask at an input prompt whether a tool call may run; no answer (no stdin) is no."""
    import builtins

    prompt = (f"Approve {event.tool_name}({shorten(args_text(event.input_args), 300)})? "
              "[y/N] ")
    try:
        answer = builtins.input(prompt)
    except (EOFError, OSError, RuntimeError, NotImplementedError):
        # StdinNotImplementedError (a front end without stdin) is a NotImplementedError
        return False
    return answer.strip().lower() in ("y", "yes")


# -- the magic --------------------------------------------------------------------------
def _schema(nb: "AgentMagics", name: str | None) -> Any:
    if name is None:
        return None
    ns = nb.shell.user_ns if nb.shell is not None else {}
    if name not in ns:
        raise UsageError(f"%%chat --schema: no {excerpt(name)} in the notebook; define a pydantic "
                         f"model first (class {name}(BaseModel): ...)")
    value = ns[name]
    if not (isinstance(value, type) and issubclass(value, BaseModel)):
        raise UsageError(f"%%chat --schema: {excerpt(name)} is a {type(value).__name__}, not a "
                         "pydantic model class")
    return value


_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n```|\Z)", re.DOTALL)


def code_of(text: str) -> str:
    """The code of an answer: its fenced blocks joined, else the whole answer."""
    blocks = [m.group(2).rstrip() for m in _FENCE.finditer(text)]
    return "\n\n".join(b for b in blocks if b.strip()) if blocks else text.strip()


def json_of(text: str) -> Any:
    """The JSON value in an answer (fenced or bare); ValueError when there is none."""
    candidates = [m.group(2) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    match = re.search(r"[\[{].*[\]}]", text, re.DOTALL)
    if match:
        return json.loads(match.group(0))
    raise ValueError("no JSON value in the answer")


def run_chat(nb: "AgentMagics", line: str, cell: str | None) -> Any:
    """Run one ``%%chat`` cell; the Reply (or, with ``--schema``, the validated instance)."""
    args = parse_chat_line(line)
    if args is None:
        return None
    ns = nb.shell.user_ns if nb.shell is not None else {}
    message = interpolate(cell or "", ChainMap({"Err": nb.error_history}, ns)).strip()
    if not message:
        raise UsageError("%%chat: the cell is empty; write your message below the %%chat line")
    schema = _schema(nb, args.schema_name)
    with user_errors():
        plan = plan_turn(nb.context(), args)
    agent, session = plan.agent, plan.session

    live = LiveTurn(message=message)

    def missing_note(names: list[str]) -> str | None:
        return nb.state.missing_note(session.id, names,
                                     plan.missing_tools_note("notebook", names))

    if nb.rich_display():
        view: Any = RichView(live, agent=agent.name, session=session.id, fmt=args.format,
                             rate=nb.stream_rate, stream=args.stream, shell=nb.shell,
                             missing_note=missing_note)
    else:
        view = TextPrinter(live, session=session.id, missing_note=missing_note)

    def approve(event: "ApprovalRequested") -> bool:
        view.flush()
        return ask_approval(event)

    events = agent.stream(message, session=session.id, schema=schema, tools=plan.tools,
                          model=plan.model, approve=approve)
    with user_errors():  # a model spec whose package is missing, say: before any output
        reply, interrupted = drive(events, view)
    live.interrupted = live.interrupted or interrupted
    if reply is not None:
        # the stored figures (an interrupted stream's are the engine's estimate)
        live.input_tokens = max(live.input_tokens, reply.usage.input_tokens)
        live.output_tokens = max(live.output_tokens, reply.usage.output_tokens)
    note = _after(nb, args, live, reply)
    if reply is not None and reply.status == "error":
        live.error = None  # said once, by the UsageError below
        view.finish(note)
        raise UsageError(f"%%chat: the turn failed: {reply.error or 'model error'} (it is "
                         "stored, marked error; the session is fine, send the next message)")
    view.finish(note)
    if interrupted:
        nb.last_reply = reply
        raise TurnInterrupted("the turn was stopped; its partial answer is stored, "
                              "marked interrupted")
    if reply is None:  # pragma: no cover - the engine always finishes a turn
        raise UsageError("%%chat: the turn ended without a reply")
    nb.last_reply = ChatReply.of(reply, shown_live=True)
    if schema is not None:
        return reply.data
    if not nb.rich_display() and nb.shell is not None:
        # A terminal's displayhook prints "Out[n]:" before it asks how to show a value,
        # and the answer is printed already: hand the Reply to _ and Out[n] ourselves
        # and give the prompt nothing to show.
        hook = getattr(nb.shell, "displayhook", None)
        if hook is not None and hasattr(hook, "update_user_ns"):
            hook.update_user_ns(nb.last_reply)
            if hasattr(hook, "fill_exec_result"):
                hook.fill_exec_result(nb.last_reply)  # run_cell(...).result
            return None
    return nb.last_reply


def _after(nb: "AgentMagics", args: ChatArgs, live: LiveTurn, reply: "Reply | None") -> str | None:
    """Apply ``--format code|json`` to a finished answer; a note for the output, if any."""
    if reply is None or reply.status != "complete":
        return None
    if args.format == "code":
        code = code_of(reply.text)
        if code and nb.shell is not None:
            nb.shell.set_next_input(code, replace=False)
            return "the code is in a new cell below"
        return None
    if args.format == "json" and reply.data is None:
        try:
            reply.data = json_of(reply.text)
        except ValueError:
            return "the answer is not valid JSON (reply.data is None)"
    return None


__all__ = ["ChatArgs", "ChatReply", "RichView", "TextView", "ask_approval", "chat_help",
           "code_of", "json_of", "parse_chat_line", "run_chat"]
