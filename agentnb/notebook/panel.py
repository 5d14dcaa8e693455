"""``ChatPanel``: an ipywidgets chat with a stored agent, streaming in the kernel.

::

    from agentnb.widgets import ChatPanel
    ChatPanel(agent="calc")          # or: %agent panel calc

The panel is a ``VBox``: an agent picker and a session picker (the agent's
sessions, newest first, plus "new session"), the transcript rendered from
Markdown, the input box with Send and Stop, a row of Approve/Deny buttons
while a tool waits for approval, a status line (errors in red) and a token
footer.

A turn runs as an asyncio task on the kernel's running loop, so the notebook
stays usable while the agent works; Stop cancels the task and the engine
stores the partial answer marked ``interrupted``. Everything the transcript
shows after a turn is re-read from the store, so what the panel shows is what
the store holds. A panel keeps all its state on itself: several panels can
be open at once, and a panel opened after a kernel restart shows the stored
session it resumes.

**Enter sends, Shift+Enter is a new line**, as in every chat box: the input
is a :class:`~agentnb.notebook.chatbox.ChatInput` (an anywidget), because
ipywidgets' ``Textarea`` never says which key was pressed. What is sent is
exactly the text in the box; nothing typed for layout ends up in the message.
While a turn streams, the footer says so (tokens so far, tool calls); after
it, the footer has the stored turn's figures.

Every piece of user and model text is rendered with markdown-it-py with raw
HTML disabled (or escaped into ``<pre>`` without it): the HTML widget sets
``innerHTML`` unsanitized in the browser.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Sequence

import ipywidgets as widgets

from ..render.live import LiveTurn as _LiveTurn
from ..render.live import footer_text
from ..render.markup import (
    _MUTED,
    error_html,
    messages_html,
    render_markdown,
    scroll_box,
    session_label,
    tool_card_html,
)
from ..errors import error_text
from ..text import args_text, shorten
from .state import default_store, quiet, notebook_state

if TYPE_CHECKING:  # pragma: no cover
    from ..agent import Agent
    from ..api import Store
    from ..events import ApprovalRequested, Event, Reply
    from ..schemas import MessageRecord

log = logging.getLogger(__name__)

#: The session picker's value for "start a new session with the next message".
NEW_SESSION = "new"

#: What inline layout cannot say: a clipped session label ends with an ellipsis.
_PANEL_STYLE = ("<style>.agentnb-panel-session select{text-overflow:ellipsis;"
                "white-space:nowrap;overflow:hidden}</style>")

class ApprovalRow(widgets.HBox):
    """A tool call waiting for the user: its description and Approve / Deny buttons."""

    def __init__(self, call_id: str, tool_name: str, args: dict[str, Any],
                 future: "asyncio.Future[bool]") -> None:
        self.call_id = call_id
        self.tool_name = tool_name
        self.future = future
        self.question = widgets.HTML(
            f"Run <b>{html.escape(tool_name)}</b>(<code>"
            f"{html.escape(shorten(args_text(args), 120))}</code>)?"
        )
        self.approve_button = widgets.Button(description="Approve", button_style="success",
                                             icon="check", tooltip=f"run {tool_name}")
        self.deny_button = widgets.Button(description="Deny", button_style="danger",
                                          icon="times", tooltip=f"do not run {tool_name}")
        self.approve_button.add_class("agentnb-approve")
        self.deny_button.add_class("agentnb-deny")
        self.approve_button.on_click(lambda _: self.answer(True))
        self.deny_button.on_click(lambda _: self.answer(False))
        super().__init__([self.question, self.approve_button, self.deny_button],
                         layout=widgets.Layout(align_items="center"))
        self.add_class("agentnb-approval")

    def answer(self, ok: bool) -> None:
        """Resolve the engine's wait: ``True`` runs the tool, ``False`` denies it."""
        if not self.future.done():
            self.future.set_result(ok)
        self.approve_button.disabled = self.deny_button.disabled = True


# -- the panel --------------------------------------------------------------------------
class ChatPanel(widgets.VBox):
    """A chat with a stored agent, as a widget.

    ``store``: an :class:`agentnb.api.Store` (default: the notebook's store when
    ``%load_ext agentnb`` ran, else ``agentnb.connect()``). ``agent``: a name
    (default: the first agent). ``session``: a session id or prefix (default:
    the agent's latest session; ``"new"`` starts a new one with the first
    message). ``rate``: most transcript redraws per second while streaming.

    Methods: :meth:`submit` (what Send and Enter call; returns the turn's
    asyncio task), :meth:`stop`, :meth:`select` (agent and/or session),
    :meth:`reload`. ``task`` is the current (or last) turn's task.
    """

    def __init__(self, store: "Store | None" = None, agent: str | None = None,
                 session: str | uuid.UUID | None = None, *, rate: float = 15.0) -> None:
        self._store = store
        self._agent: Agent | None = None
        self.session_id: uuid.UUID | None = None
        self.task: asyncio.Task | None = None
        self._turn_began = False
        self._stop_early = False
        self._interval = 1.0 / max(float(rate), 0.5)
        self._history: list[MessageRecord] = []
        self._history_html = ""
        self._live: _LiveTurn | None = None
        self._last_render = 0.0
        self._render_handle: asyncio.TimerHandle | None = None
        self._quiet = False  # set while the panel changes its own widgets
        self._approval_futures: list[asyncio.Future] = []

        self.agent_picker = widgets.Dropdown(description="Agent", options=[],
                                             layout=widgets.Layout(width="16em"))
        # wide enough for a whole session label (session_label keeps it short), and
        # shrinking with the panel; the style below ends a clipped label with "…"
        self.session_picker = widgets.Dropdown(
            description="Session", options=[],
            layout=widgets.Layout(width="40em", max_width="100%"))
        self.refresh_button = widgets.Button(icon="refresh", tooltip="reload agents and sessions",
                                             layout=widgets.Layout(width="2.6em"))
        self.transcript = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.approvals = widgets.VBox()
        from .chatbox import ChatInput

        self.input = ChatInput(placeholder="Message (Enter sends, Shift+Enter for a new line)",
                               rows=3, layout=widgets.Layout(width="100%"))
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          icon="paper-plane", tooltip="send (Enter)")
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", disabled=True,
            tooltip="stop the answer (it is kept, marked interrupted)")
        self.status_line = widgets.HTML()
        self.footer = widgets.HTML()
        for w, cls in [(self.agent_picker, "agentnb-panel-agent"),
                       (self.session_picker, "agentnb-panel-session"),
                       (self.refresh_button, "agentnb-panel-refresh"),
                       (self.transcript, "agentnb-panel-transcript"),
                       (self.approvals, "agentnb-panel-approvals"),
                       (self.input, "agentnb-panel-input"),
                       (self.send_button, "agentnb-panel-send"),
                       (self.stop_button, "agentnb-panel-stop"),
                       (self.status_line, "agentnb-panel-status"),
                       (self.footer, "agentnb-panel-footer")]:
            w.add_class(cls)

        # a line between the pickers and the transcript, which scrolls under them
        self.picker_row = widgets.HBox(
            [self.agent_picker, self.session_picker, self.refresh_button],
            layout=widgets.Layout(border_bottom="1px solid var(--jp-border-color2,#ddd)",
                                  padding="0 0 4px 0", margin="0 0 4px 0",
                                  align_items="center"))
        self.picker_row.add_class("agentnb-panel-pickers")
        self._style = widgets.HTML(_PANEL_STYLE)
        super().__init__([
            self._style,
            self.picker_row,
            self.transcript,
            self.approvals,
            self.input,
            widgets.HBox([self.send_button, self.stop_button, self.status_line],
                         layout=widgets.Layout(align_items="center")),
            self.footer,
        ], layout=widgets.Layout(width="100%", border="1px solid var(--jp-border-color2,#ddd)",
                                 padding="4px"))
        self.add_class("agentnb-panel")

        self.agent_picker.observe(self._agent_picked, names="value")
        self.session_picker.observe(self._session_picked, names="value")
        self.input.on_submit(self._entered)
        self.send_button.on_click(lambda _: self.submit())
        self.stop_button.on_click(lambda _: self.stop())
        self.refresh_button.on_click(lambda _: self.reload())

        try:
            self._open(agent, session)
        except Exception as exc:  # an unknown agent, a locked store: a red line, no traceback
            self._show_error(error_text(exc))
            self._render_now()

    # -- properties -----------------------------------------------------------------
    @property
    def store(self) -> "Store":
        """The store this panel reads and writes (opened on first use)."""
        if self._store is None:
            self._store = default_store()
        return self._store

    @property
    def agent_name(self) -> str | None:
        """The name of the agent the panel chats with."""
        return self._agent.name if self._agent is not None else None

    @property
    def busy(self) -> bool:
        """True while a turn runs."""
        return self.task is not None and not self.task.done()

    @property
    def messages(self) -> list["MessageRecord"]:
        """The stored messages of the panel's session (as last read)."""
        return list(self._history)

    # -- opening agents and sessions --------------------------------------------------
    def _open(self, agent: str | None, session: str | uuid.UUID | None) -> None:
        names = [a.name for a in self.store.agents()]
        with self._quietly():
            self.agent_picker.options = names
            self.agent_picker.value = None
        self._agent = None
        self.session_id = None
        if agent is None and names:
            agent = names[0]
        if agent is None:
            self._set_history([])
            self._show_notice("no agents yet: create one with %agent create NAME "
                              "(or store.create_agent), then press ⟳")
            self._update_controls()
            return
        try:
            handle = self.store.agent(agent)
        except Exception:
            self._set_history([])
            self._update_controls()
            raise
        with self._quietly():
            self.agent_picker.value = handle.name
        self._agent = handle
        self._open_session(session)

    def _open_session(self, session: str | uuid.UUID | None) -> None:
        assert self._agent is not None
        if session == NEW_SESSION:
            record = None
        elif session is not None:
            record = self._agent.resume(session)
        else:
            record = self._agent.current_session()
        self.session_id = record.id if record is not None else None
        self._fill_sessions()
        self._load_history()
        self._show_notice("")
        self._update_controls()

    def _fill_sessions(self) -> None:
        assert self._agent is not None
        summaries = self.store.sessions(self._agent.name)
        options: list[tuple[str, str]] = [("+ new session", NEW_SESSION)]
        options += [(session_label(s), str(s.session.id)) for s in summaries]
        with self._quietly():
            self.session_picker.options = options
            self.session_picker.value = (
                str(self.session_id) if self.session_id is not None else NEW_SESSION
            )

    def _load_history(self) -> None:
        history = self.store.history(self.session_id) if self.session_id is not None else []
        self._set_history(history)

    def _set_history(self, history: Sequence["MessageRecord"]) -> None:
        self._history = list(history)
        self._history_html = messages_html(self._history, self.agent_name or "assistant")
        self._update_footer()
        self._render_now()

    def select(self, agent: str | None = None, session: str | uuid.UUID | None = None) -> None:
        """Show another agent and/or session (``session="new"``: a new session)."""
        if self.busy:
            self._show_error("a turn is running: wait for it or press Stop first")
            return
        try:
            if agent is not None and agent != self.agent_name:
                self._open(agent, session)
            elif session is not None and self._agent is not None:
                self._open_session(session)
        except Exception as exc:
            self._show_error(error_text(exc))

    def reload(self) -> None:
        """Re-read agents, sessions and the transcript from the store."""
        if self.busy:
            return
        try:
            if self._agent is not None and self.agent_name in {a.name for a in self.store.agents()}:
                self._open(self.agent_name, self.session_id or NEW_SESSION)
            else:
                self._open(None, None)
        except Exception as exc:
            self._show_error(error_text(exc))

    def _agent_picked(self, change: dict) -> None:
        if self._quiet or change["new"] is None:
            return
        self.select(agent=change["new"])

    def _session_picked(self, change: dict) -> None:
        if self._quiet or change["new"] is None or self._agent is None:
            return
        self.select(session=change["new"])

    # -- input ---------------------------------------------------------------------
    def _entered(self, text: str) -> None:
        """Enter in the box (which empties itself): send ``text``; while a turn runs,
        put it back in the box instead."""
        if self.busy:
            if text.strip():
                self._set_input(text)
            self._show_error("a turn is running: wait for it or press Stop")
            return
        self.submit(text)

    def _set_input(self, text: str) -> None:
        with self._quietly():
            self.input.value = text

    def submit(self, text: str | None = None) -> "asyncio.Task | None":
        """Send ``text`` (default: the input box) as the next turn; the turn's task.

        Inside a running event loop (a Jupyter kernel, or a test's
        ``asyncio.run``) the turn runs as a task on that loop and this returns
        at once. Outside any loop (a plain script) the turn runs to its end
        first; the returned task is then done. None when nothing was sent
        (empty text, no agent, or a turn already running).
        """
        message = (self.input.value if text is None else text).strip()
        if not message:
            return None
        if self.busy:
            self._show_error("a turn is running: wait for it or press Stop")
            return None
        if self._agent is None:
            self._show_error("no agent to chat with: create one with %agent create NAME")
            return None
        if text is None:
            self._set_input("")
        live = _LiveTurn(message, model=self._agent.config.model)
        self._turn_began = self._stop_early = False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self.task = loop.create_task(self._run_turn(live))
            self._started(live)
            return self.task

        async def drive() -> None:
            self.task = asyncio.ensure_future(self._run_turn(live))
            self._started(live)
            await self.task

        asyncio.run(drive())
        return self.task

    def stop(self) -> None:
        """Stop the running turn: its partial answer is stored, marked interrupted."""
        if self.busy:
            assert self.task is not None
            self.stop_button.disabled = True
            if self._turn_began:
                self.task.cancel()
            else:
                # Cancelling a task that has not run yet would skip the turn's own
                # clean-up (controls, notice); let it start and stop at once.
                self._stop_early = True

    # -- one turn --------------------------------------------------------------------
    def _started(self, live: _LiveTurn) -> None:
        """Show at once that the turn is on its way (before its task first runs)."""
        self._live = live
        self._show_notice("")
        self._update_controls(running=True)
        self._update_footer(live)
        self._render_now()

    async def _run_turn(self, live: _LiveTurn) -> "Reply | None":
        from ..events import TurnFinished

        assert self._agent is not None
        agent = self._agent
        message = live.message
        reply = None
        started = False
        self._turn_began = True
        try:
            if self._stop_early:  # Stop was pressed before this task first ran
                raise asyncio.CancelledError
            if self.session_id is None:
                record = await asyncio.to_thread(agent.new_session, **_session_attrs())
                self.session_id = record.id
                self._fill_sessions()
            async for event in agent.astream(message, session=self.session_id,
                                             approve=self._approve):
                started = True
                self._on_event(live, event)
                if isinstance(event, TurnFinished):
                    reply = event.reply
        except asyncio.CancelledError:
            live.interrupted = True
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # handled: the engine stored the turn, interrupted
        except Exception as exc:
            live.error = error_text(exc)
        finally:
            self._clear_approvals()
            if self._render_handle is not None:
                self._render_handle.cancel()
                self._render_handle = None
        stored_before = len(self._history)
        nothing_stored = False
        try:
            history = (await asyncio.to_thread(self.store.history, self.session_id)
                       if self.session_id is not None else [])
        except Exception as exc:
            live.error = live.error or error_text(exc)
        else:
            nothing_stored = len(history) == stored_before
            if self._agent is agent:
                self._live = None
                self._set_history(history)
            self._make_current(agent.name)
        if (live.error or live.interrupted) and not started and nothing_stored \
                and not self.input.value.strip():
            self._set_input(message)  # nothing was stored: give the text back
        if reply is not None and reply.status == "error":
            live.error = live.error or reply.error or "the turn failed"
        if live.error:
            self._show_error(live.error)
        elif live.interrupted and nothing_stored:
            self._show_notice("stopped before the turn started: nothing was stored, "
                              "the message is back in the box")
        elif live.interrupted:
            self._show_notice("stopped: the partial answer is kept, marked interrupted")
        self._live = None
        self._update_footer()
        try:
            self._fill_sessions()
        except Exception:  # the turn is shown; a stale picker is not worth a red line
            log.debug("could not refresh the session list", exc_info=True)
        self._update_controls(running=False)
        self._render_now()
        return reply

    def _on_event(self, live: _LiveTurn, event: "Event") -> None:
        from ..events import Token

        if not live.apply(event):
            return
        if isinstance(event, Token):
            self._schedule_render()
        else:
            self._render_now()

    def _make_current(self, agent: str) -> None:
        """The notebook's current agent and session follow the panel's last turn.

        So ``%agent history`` or the next ``%%chat`` after a panel turn refer
        to the conversation the user just had (when the panel uses the
        notebook's own store).
        """
        state = notebook_state()
        if (state is not None and state.store_is_open and state.store is self._store
                and self.session_id):
            handle = state.handle(state.store, agent)
            handle.resume(self.session_id)
            state.set_current(handle)

    async def _approve(self, event: "ApprovalRequested") -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        row = ApprovalRow(event.call_id, event.tool_name, event.input_args, future)
        self._approval_futures.append(future)
        self.approvals.children = [*self.approvals.children, row]
        try:
            return await future
        finally:
            self.approvals.children = [r for r in self.approvals.children if r is not row]
            row.close()

    def _clear_approvals(self) -> None:
        for future in self._approval_futures:
            if not future.done():
                future.cancel()
        self._approval_futures.clear()
        for row in self.approvals.children:
            row.close()
        self.approvals.children = []

    @property
    def approval_rows(self) -> list[ApprovalRow]:
        """The tool calls waiting for Approve / Deny, oldest first."""
        return list(self.approvals.children)

    # -- drawing -------------------------------------------------------------------------
    def _schedule_render(self) -> None:
        wait = self._interval - (time.monotonic() - self._last_render)
        if wait <= 0:
            self._render_now()
        elif self._render_handle is None:
            self._render_handle = asyncio.get_running_loop().call_later(wait, self._deferred)

    def _deferred(self) -> None:
        self._render_handle = None
        self._render_now()

    def _render_now(self) -> None:
        self._last_render = time.monotonic()
        name = self.agent_name or "assistant"
        inner = self._history_html
        if self._live is not None:
            inner += self._live.html(name)
        if not inner:
            if self._agent is None:
                inner = f'<div style="{_MUTED}">(no agent)</div>'
            else:
                inner = (f'<div style="{_MUTED}">(new session: your first message starts it)'
                         "</div>")
        self.transcript.value = scroll_box(inner)
        if self._live is not None:
            self._update_footer(self._live)

    def _update_footer(self, live: _LiveTurn | None = None) -> None:
        """The token footer: the stored session's figures, or the running turn's."""
        if self._agent is None:
            self.footer.value = ""
            return
        if live is not None:
            # the turn under way, in the words of a streaming %%chat footer (not the
            # previous turn's figures, which would read as this one's)
            text = footer_text(live, session=self.session_id, seconds=None, done=False)
            self.footer.value = (f'<div class="agentnb-panel-footer-live" data-streaming="1" '
                                 f'style="{_MUTED};font-size:0.85em">{html.escape(text)}</div>')
            return
        turns, last_in, last_out, total_in, total_out = _token_figures(self._history)
        model = self._agent.config.model
        parts = [f"model <b>{html.escape(model)}</b>"]
        if turns:
            parts.append(f"last turn: {last_in:,} in / {last_out:,} out tokens")
        parts.append(f"session ({turns} turn{'s' if turns != 1 else ''}): "
                     f"{total_in:,} in / {total_out:,} out tokens")
        self.footer.value = f'<div style="{_MUTED};font-size:0.85em">{" · ".join(parts)}</div>'

    def _show_error(self, text: str) -> None:
        self.status_line.value = error_html(text)

    def _show_notice(self, text: str) -> None:
        self.status_line.value = (
            f'<span style="{_MUTED}">{html.escape(text)}</span>' if text else ""
        )

    def _update_controls(self, running: bool | None = None) -> None:
        running = self.busy if running is None else running
        no_agent = self._agent is None
        self.send_button.disabled = running or no_agent
        self.stop_button.disabled = not running
        self.agent_picker.disabled = running
        self.session_picker.disabled = running or no_agent

    def _quietly(self) -> "quiet":
        return quiet(self)

    def close(self) -> None:
        """Stop a running turn and close the panel's widgets."""
        self.stop()
        self._clear_approvals()
        for w in (self.agent_picker, self.session_picker, self.refresh_button, self.transcript,
                  self.approvals, self.input, self.send_button, self.stop_button,
                  self.status_line, self.footer, self.picker_row, self._style):
            w.close()
        super().close()

    def __repr__(self) -> str:
        session = str(self.session_id)[:8] if self.session_id else "new"
        return f"<agentnb.ChatPanel agent={self.agent_name!r} session={session}>"


def _token_figures(history: Sequence["MessageRecord"]) -> tuple[int, int, int, int, int]:
    """(turns, last turn in, last turn out, session in, session out) of stored messages."""
    turns = last_in = last_out = total_in = total_out = 0
    for m in history:
        if m.role == "user":
            turns += 1
            last_in = last_out = 0
        tin, tout = m.input_tokens or 0, m.output_tokens or 0
        last_in += tin
        last_out += tout
        total_in += tin
        total_out += tout
    return turns, last_in, last_out, total_in, total_out


def _session_attrs() -> dict[str, Any]:
    state = notebook_state()
    attrs = state.session_attrs() if state is not None else {}
    attrs["source"] = "panel"
    return attrs


__all__ = [
    "ApprovalRow",
    "ChatPanel",
    "NEW_SESSION",
    "messages_html",
    "render_markdown",
    "scroll_box",
    "session_label",
    "tool_card_html",
]
