"""``SessionBrowser``: browse, search, read and export stored sessions (ipywidgets).

::

    from agentnb.widgets import SessionBrowser
    SessionBrowser(agent="calc")        # or: %agent sessions --browse calc

A ``VBox``: an agent picker ("all agents" or one), a search box across
message text, a table of the sessions (first message, started, last activity,
turns, messages, tokens), a list to pick one, its transcript rendered from
Markdown, and Export buttons that write the session as ``.md`` or ``.json``
into ``export_dir`` (default: the kernel's working directory, which in
Jupyter is the notebook's folder, so the file shows up next to it).
"""

from __future__ import annotations

import html
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import ipywidgets as widgets

from ..render.markup import error_html, messages_html, scroll_box
from ..render.results import Table
from ..errors import error_text
from ..text import short_id, shorten
from .state import default_store, quiet

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Store
    from ..schemas import MessageRecord, SessionSummary

ALL_AGENTS = ""
_MUTED = "color:var(--jp-ui-font-color2,#777)"


def _snippet(text: str, needle: str, width: int = 60) -> str:
    """HTML: ``text`` around the first match of ``needle``, the match in ``<mark>``."""
    one_line = " ".join(text.split())
    match = re.search(re.escape(needle), one_line, re.IGNORECASE)
    if match is None:
        return html.escape(shorten(one_line, width * 2))
    start, end = match.span()
    left = max(0, start - width)
    right = min(len(one_line), end + width)
    return (
        ("…" if left else "")
        + html.escape(one_line[left:start])
        + f"<mark>{html.escape(one_line[start:end])}</mark>"
        + html.escape(one_line[end:right])
        + ("…" if right < len(one_line) else "")
    )


class SessionBrowser(widgets.VBox):
    """Stored sessions of one agent (or all): list, search, read, export.

    ``store``: default the notebook's store (``%load_ext agentnb``), else
    ``agentnb.connect()``. ``agent``: a name, or None for every agent.
    ``export_dir``: where Export writes files (default: the working directory).

    Methods: :meth:`search`, :meth:`open_session`, :meth:`export`, :meth:`reload`.
    """

    def __init__(self, store: "Store | None" = None, agent: str | None = None, *,
                 export_dir: str | Path | None = None, limit: int = 200) -> None:
        self._store = store
        self.export_dir = Path(export_dir) if export_dir is not None else None
        self.limit = limit
        self.session_id: uuid.UUID | None = None
        self.summaries: list[SessionSummary] = []
        self._quiet = False

        self.agent_picker = widgets.Dropdown(description="Agent", options=[],
                                             layout=widgets.Layout(width="16em"))
        self.search_box = widgets.Text(placeholder="search messages (Enter)",
                                       continuous_update=False,
                                       layout=widgets.Layout(width="22em"))
        self.search_button = widgets.Button(description="Search", icon="search")
        self.refresh_button = widgets.Button(icon="refresh", tooltip="reload from the store",
                                             layout=widgets.Layout(width="2.6em"))
        self.results = widgets.HTML()
        self.sessions_table = widgets.HTML()
        self.session_list = widgets.Select(options=[], rows=8,
                                           layout=widgets.Layout(width="100%"))
        self.transcript = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.export_md_button = widgets.Button(
            description="Export .md", icon="download", disabled=True,
            tooltip="write the session as Markdown")
        self.export_json_button = widgets.Button(
            description="Export .json", icon="download", disabled=True,
            tooltip="write the session as JSON")
        self.status_line = widgets.HTML()
        for w, cls in [(self.agent_picker, "agentnb-browser-agent"),
                       (self.search_box, "agentnb-browser-search"),
                       (self.search_button, "agentnb-browser-search-button"),
                       (self.refresh_button, "agentnb-browser-refresh"),
                       (self.results, "agentnb-browser-results"),
                       (self.sessions_table, "agentnb-browser-table"),
                       (self.session_list, "agentnb-browser-sessions"),
                       (self.transcript, "agentnb-browser-transcript"),
                       (self.export_md_button, "agentnb-browser-export-md"),
                       (self.export_json_button, "agentnb-browser-export-json"),
                       (self.status_line, "agentnb-browser-status")]:
            w.add_class(cls)
        super().__init__([
            widgets.HBox([self.agent_picker, self.search_box, self.search_button,
                          self.refresh_button]),
            self.results,
            self.sessions_table,
            self.session_list,
            self.transcript,
            widgets.HBox([self.export_md_button, self.export_json_button, self.status_line],
                         layout=widgets.Layout(align_items="center")),
        ], layout=widgets.Layout(width="100%", border="1px solid var(--jp-border-color2,#ddd)",
                                 padding="4px"))
        self.add_class("agentnb-browser")

        self.agent_picker.observe(self._agent_picked, names="value")
        self.search_box.observe(lambda change: self.search(change["new"]), names="value")
        self.search_button.on_click(lambda _: self.search(self.search_box.value))
        self.refresh_button.on_click(lambda _: self.reload())
        self.session_list.observe(self._session_picked, names="value")
        self.export_md_button.on_click(lambda _: self._export_clicked("md"))
        self.export_json_button.on_click(lambda _: self._export_clicked("json"))

        try:
            self._load_agents(agent)
        except Exception as exc:
            self._show_error(error_text(exc))

    @property
    def store(self) -> "Store":
        if self._store is None:
            self._store = default_store()
        return self._store

    @property
    def agent(self) -> str | None:
        """The agent whose sessions are listed (None: every agent)."""
        return self.agent_picker.value or None

    # -- loading ----------------------------------------------------------------------
    def _load_agents(self, agent: str | None) -> None:
        names = [a.name for a in self.store.agents()]
        if agent is not None:
            agent = self.store.agent(agent).name  # NotFoundError suggests close names
        with quiet(self):
            self.agent_picker.options = [("all agents", ALL_AGENTS)] + [(n, n) for n in names]
            self.agent_picker.value = agent or ALL_AGENTS
        self._load_sessions()

    def _load_sessions(self) -> None:
        self.summaries = self.store.sessions(self.agent, limit=self.limit)
        self._show_sessions(self.summaries)
        self.results.value = ""
        self._show_status("")

    def reload(self) -> None:
        """Re-read agents and sessions from the store (the search is kept)."""
        try:
            self._load_agents(self.agent)
            if self.search_box.value.strip():
                self.search(self.search_box.value)
        except Exception as exc:
            self._show_error(error_text(exc))

    def _agent_picked(self, change: dict) -> None:
        if self._quiet:
            return
        try:
            self._load_sessions()
            if self.search_box.value.strip():
                self.search(self.search_box.value)
        except Exception as exc:
            self._show_error(error_text(exc))

    def _show_sessions(self, summaries: Sequence["SessionSummary"],
                       labels: dict[uuid.UUID, str] | None = None) -> None:
        with_agent = self.agent is None
        columns = ["id"] + (["agent"] if with_agent else []) + [
            "first message", "started", "last activity", "turns", "messages", "tokens"]
        rows = [
            [short_id(s.session.id)] + ([s.agent_name] if with_agent else []) + [
                shorten(s.session.title or s.first_message or "", 60),
                s.session.created_at,
                s.last_activity or s.session.updated_at,
                s.turns,
                s.messages,
                s.input_tokens + s.output_tokens,
            ]
            for s in summaries
        ]
        who = self.agent or "every agent"
        title = f"{len(rows)} session{'s' if len(rows) != 1 else ''} of {who} (times in UTC)"
        self.sessions_table.value = Table(columns, rows, title=title,
                                          empty="(no sessions)")._repr_html_()
        options = []
        for s in summaries:
            label = (labels or {}).get(s.session.id) or shorten(
                s.session.title or s.first_message or "(empty)", 60)
            prefix = f"{s.agent_name} · " if with_agent else ""
            turns = f"{s.turns} turn{'s' if s.turns != 1 else ''}"
            options.append((f"{short_id(s.session.id)} · {prefix}{label} · {turns}",
                            str(s.session.id)))
        with quiet(self):
            self.session_list.options = options
            keep = str(self.session_id) if self.session_id else None
            self.session_list.value = keep if keep in {v for _, v in options} else None
        if self.session_list.value is None:
            self._close_transcript()

    # -- search -----------------------------------------------------------------------
    def search(self, text: str) -> list[tuple[str, "MessageRecord"]]:
        """Find messages containing ``text``; lists only the sessions with a match.

        An empty ``text`` shows every session again. Returns the hits as
        (agent name, message) pairs, newest first.
        """
        text = (text or "").strip()
        if not text:
            self.results.value = ""
            self._show_sessions(self.summaries)
            return []
        try:
            hits = self.store.search(text, agent=self.agent)
        except Exception as exc:
            self._show_error(error_text(exc))
            return []
        by_id = {s.session.id: s for s in self.summaries}
        matched: list[SessionSummary] = []
        labels: dict[uuid.UUID, str] = {}
        for _, message in hits:
            summary = by_id.get(message.session_id)
            if summary is not None and message.session_id not in labels:
                matched.append(summary)
                labels[message.session_id] = shorten(message.content, 60)
        lines = [
            f'<li><code>{short_id(m.session_id)}</code> {html.escape(agent_name)} · '
            f'{html.escape(m.role)} · {m.created_at:%Y-%m-%d %H:%M}: {_snippet(m.content, text)}'
            "</li>"
            for agent_name, m in hits
        ]
        found = f"{len(hits)} message{'s' if len(hits) != 1 else ''} with “{html.escape(text)}”"
        self.results.value = (
            f'<div class="agentnb-search-results"><div style="{_MUTED}">{found}</div>'
            + (f'<ul style="margin:2px 0">{"".join(lines)}</ul>' if lines else "")
            + "</div>"
        )
        self._show_sessions(matched, labels)
        return hits

    # -- one session ------------------------------------------------------------------
    def _session_picked(self, change: dict) -> None:
        if self._quiet or not change["new"]:
            return
        self.open_session(change["new"])

    def open_session(self, session_id: str | uuid.UUID) -> None:
        """Show a session's transcript (by id or unique prefix)."""
        try:
            session = self.store.session(session_id)
            agent = self.store.get_agent(session.agent_id)
            history = self.store.history(session.id)
        except Exception as exc:
            self._show_error(error_text(exc))
            return
        self.session_id = session.id
        with quiet(self):
            if str(session.id) in {v for _, v in self.session_list.options}:
                self.session_list.value = str(session.id)
        head = (
            f'<div style="font-weight:bold">{html.escape(agent.name)} · session '
            f"<code>{short_id(session.id)}</code> · started {session.created_at:%Y-%m-%d %H:%M} UTC"
            "</div>"
        )
        body = messages_html(history, agent.name) or f'<div style="{_MUTED}">(no messages)</div>'
        self.transcript.value = head + scroll_box(body, height="30em")
        self.export_md_button.disabled = self.export_json_button.disabled = False
        self._show_status("")

    def _close_transcript(self) -> None:
        self.session_id = None
        self.transcript.value = ""
        self.export_md_button.disabled = self.export_json_button.disabled = True

    def export(self, fmt: str = "md", path: str | Path | None = None) -> Path:
        """Write the open session as Markdown (``md``) or JSON (``json``); the file's path.

        ``path`` defaults to ``AGENT-SESSIONID.md`` (or ``.json``) in ``export_dir``.
        """
        if self.session_id is None:
            from ..errors import InvalidValueError

            raise InvalidValueError("open a session first")
        text = self.store.export(self.session_id, fmt)  # type: ignore[arg-type]
        if path is None:
            session = self.store.session(self.session_id)
            agent = self.store.get_agent(session.agent_id).name
            folder = self.export_dir or Path.cwd()
            path = folder / f"{agent}-{short_id(self.session_id)}.{fmt}"
        path = Path(path).expanduser()
        path.write_text(text, encoding="utf-8")
        return path

    def _export_clicked(self, fmt: str) -> None:
        try:
            path = self.export(fmt)
        except Exception as exc:
            self._show_error(error_text(exc))
            return
        shown = path
        try:
            shown = path.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            pass
        self.status_line.value = (
            f'<span class="agentnb-export-done" style="color:#2e9d4e">wrote '
            f"<code>{html.escape(str(shown))}</code> ({path.stat().st_size:,} bytes)</span>"
        )

    # -- status -----------------------------------------------------------------------
    def _show_error(self, text: str) -> None:
        self.status_line.value = error_html(text)

    def _show_status(self, text: str) -> None:
        self.status_line.value = (
            f'<span style="{_MUTED}">{html.escape(text)}</span>' if text else "")

    def __repr__(self) -> str:
        return f"<agentnb.SessionBrowser agent={self.agent!r} sessions={len(self.summaries)}>"


__all__ = ["SessionBrowser"]
