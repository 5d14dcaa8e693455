"""The chat panel and the session browser, driven from pytest without a kernel.

Each scenario runs inside ``asyncio.run`` (the loop a kernel would own): the
test sets the input box or clicks the buttons exactly as a user would, lets
the turn's task run, and then checks what the panel shows (transcript,
status line, footer, buttons) and what the store holds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

import agentnb
from agentnb.notebook.panel import NEW_SESSION, ChatPanel

STORY = "Tell me a story in 2000 words"


async def until(condition, timeout: float = 30.0) -> None:
    """Let the loop run until ``condition()`` holds (generous bound: no timing assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


def press_enter(panel: ChatPanel, text: str) -> None:
    """Type ``text`` then Enter: the box's value syncs, then its ``submit`` message comes
    (what the browser sends; tests/browser presses the real keys)."""
    panel.input.value = text
    panel.input.press_enter()


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def wipe(path: str) -> str:
    """Delete everything under path."""
    return f"wiped {path}"


@pytest.fixture
def calc(duck_store):
    agent = duck_store.create_agent("calc", system="You add numbers.")
    agent.tool(add)
    return agent


def roles(store, session_id):
    return [m.role for m in store.history(session_id)]


# -- chatting ---------------------------------------------------------------------------


def test_enter_sends_and_the_reply_tokens_and_store_agree(duck_store, calc):
    panel = ChatPanel(store=duck_store, agent="calc")
    assert panel.session_picker.value == NEW_SESSION  # no session yet

    async def scenario():
        press_enter(panel, "Please add(a=2, b=3)")
        assert panel.input.value == ""  # Enter took the text
        assert panel.busy and panel.send_button.disabled and not panel.stop_button.disabled
        await panel.task

    asyncio.run(scenario())
    shown = panel.transcript.value
    assert "Please add(a=2, b=3)" in shown and "add returned 5." in shown
    assert 'class="agentnb-tool-card" data-status="success"' in shown
    assert 'agentnb-icon-wrench" role="img" aria-label="tool"' in shown and "</svg> add" in shown
    history = duck_store.history(panel.session_id)
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[-1].content == "add returned 5."
    tokens_in = sum(m.input_tokens or 0 for m in history)
    tokens_out = sum(m.output_tokens or 0 for m in history)
    assert tokens_in > 0 and tokens_out > 0
    footer = panel.footer.value
    assert "offline" in footer
    assert f"last turn: {tokens_in:,} in / {tokens_out:,} out tokens" in footer
    assert "session (1 turn)" in footer
    assert not panel.busy and not panel.send_button.disabled and panel.stop_button.disabled
    # the new session is in the picker and selected
    assert panel.session_picker.value == str(panel.session_id)
    assert "Please add(a=2, b=3)" in panel.session_picker.label


def test_send_button_continues_the_same_session(duck_store, calc):
    panel = ChatPanel(store=duck_store, agent="calc")

    async def scenario():
        panel.input.value = "first message"
        panel.send_button.click()
        await panel.task
        panel.input.value = "second message"
        panel.send_button.click()
        await panel.task

    asyncio.run(scenario())
    history = duck_store.history(panel.session_id)
    assert [m.content for m in history if m.role == "user"] == ["first message", "second message"]
    assert "turn 2 of our conversation" in panel.transcript.value
    assert "session (2 turns)" in panel.footer.value
    assert len(duck_store.sessions("calc")) == 1


def test_new_lines_are_typed_text_only_enter_sends_and_nothing_is_added(duck_store, calc):
    """Shift+Enter (a newline in the value, in any place, or a paste) never sends; Enter
    sends exactly the text in the box: no backslash or other layout mark is stored."""
    panel = ChatPanel(store=duck_store, agent="calc")
    assert "Shift+Enter" in panel.input.placeholder and "\\" not in panel.input.placeholder

    async def scenario():
        panel.input.value = "line one\n"  # Shift+Enter at the end: a new line, no send
        assert panel.task is None
        panel.input.value = "line one\\\nline two\n\nline three"  # a paste; a backslash too
        assert panel.task is None
        # Enter: the front end's one state update, the emptied box and the text it held
        panel.input.set_state({"value": "", "submission": {"text": panel.input.value,
                                                           "id": "1"}})
        assert panel.input.value == "" and panel.busy
        await panel.task
        panel.input.set_state({"value": "", "submission": {"text": "   \n ", "id": "2"}})
        assert panel.task.done()  # blank: nothing sent

    asyncio.run(scenario())
    users = [m.content for m in duck_store.history(panel.session_id) if m.role == "user"]
    assert users == ["line one\\\nline two\n\nline three"]


def test_the_footer_says_a_turn_is_streaming_not_the_previous_turn(duck_store):
    duck_store.create_agent("teller", model_kwargs={"token_delay": 0.01})
    panel = ChatPanel(store=duck_store, agent="teller")
    panel.submit("hi")  # a first, finished turn: its figures are in the footer
    before = panel.footer.value
    assert "last turn:" in before and "session (1 turn)" in before
    seen = []

    async def scenario():
        press_enter(panel, STORY)
        seen.append(panel.footer.value)  # at once, before the first token
        await until(lambda: "filler text" in panel.transcript.value)
        await until(lambda: "tokens so far" in panel.footer.value
                    and not panel.footer.value.endswith("0 tokens so far · streaming…</div>"))
        seen.append(panel.footer.value)
        panel.stop()
        await panel.task

    asyncio.run(scenario())
    for footer in seen:
        assert 'data-streaming="1"' in footer and "streaming…" in footer, footer
        assert "last turn:" not in footer and "teller" not in footer
        assert "offline" in footer
    assert "session (2 turns)" in panel.footer.value and "streaming" not in panel.footer.value


def test_enter_while_a_turn_runs_keeps_the_text_in_the_box(duck_store):
    duck_store.create_agent("teller", model_kwargs={"token_delay": 0.01})
    panel = ChatPanel(store=duck_store, agent="teller")

    async def scenario():
        press_enter(panel, STORY)
        await until(lambda: "filler text" in panel.transcript.value)
        press_enter(panel, "my next\nquestion")
        assert panel.input.value == "my next\nquestion"  # given back, not lost
        assert "a turn is running" in panel.status_line.value
        panel.stop()
        await panel.task

    asyncio.run(scenario())
    assert [m.content for m in duck_store.history(panel.session_id)
            if m.role == "user"] == [STORY]


def test_long_session_titles_end_with_an_ellipsis(duck_store, calc):
    title = "A very long question about penguins, their islands and their bills " * 2
    panel = ChatPanel(store=duck_store, agent="calc")
    panel.submit(title)
    label = panel.session_picker.label
    first = label.split(" · ")[1]
    assert first.endswith("…") and title.startswith(first[:-1])
    assert len(label) <= 60  # the picker shows it whole; a narrower panel ends it with "…"
    assert "text-overflow:ellipsis" in panel.children[0].value


def test_a_separator_between_the_pickers_and_the_transcript(duck_store, calc):
    panel = ChatPanel(store=duck_store, agent="calc")
    row = panel.picker_row
    assert panel.children.index(row) + 1 == panel.children.index(panel.transcript)
    assert row.layout.border_bottom.startswith("1px solid")


def test_outside_an_event_loop_submit_runs_the_turn_to_its_end(duck_store, calc):
    panel = ChatPanel(store=duck_store, agent="calc")
    task = panel.submit("hello")
    assert task.done() and task.result().status == "complete"
    assert "You said" in panel.transcript.value and "hello" in panel.transcript.value
    assert roles(duck_store, panel.session_id) == ["user", "assistant"]
    assert panel.submit("   ") is None  # nothing to send


def test_model_text_is_escaped_not_injected(duck_store, calc):
    panel = ChatPanel(store=duck_store, agent="calc")
    panel.submit("<img src=x onerror=alert(1)> **bold**")
    shown = panel.transcript.value
    assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert "<strong>bold</strong>" in shown  # Markdown is rendered


# -- stop -------------------------------------------------------------------------------


def test_stop_keeps_the_partial_answer_marked_interrupted(duck_store):
    duck_store.create_agent("teller", model_kwargs={"token_delay": 0.01})
    panel = ChatPanel(store=duck_store, agent="teller")

    async def scenario():
        press_enter(panel, STORY)
        await until(lambda: "filler text" in panel.transcript.value)  # it is streaming
        panel.stop_button.click()
        reply = await panel.task  # the task ends (no exception)
        assert reply is None

    asyncio.run(scenario())
    history = duck_store.history(panel.session_id)
    assert [(m.role, m.status) for m in history] == [("user", "complete"),
                                                     ("assistant", "interrupted")]
    partial = history[-1].content
    assert 0 < len(partial.split()) < 2000
    shown = panel.transcript.value
    assert "agentnb-interrupted" in shown and "interrupted" in shown
    assert partial.split()[0] in shown
    assert "stopped" in panel.status_line.value
    assert not panel.busy and not panel.send_button.disabled and panel.stop_button.disabled

    async def again():  # the panel is usable after a stop
        panel.input.value = "hello again"
        panel.send_button.click()
        await panel.task

    asyncio.run(again())
    assert duck_store.history(panel.session_id)[-1].status == "complete"


def test_streaming_redraws_are_coalesced(duck_store):
    duck_store.create_agent("teller", model_kwargs={"token_delay": 0.002})
    panel = ChatPanel(store=duck_store, agent="teller", rate=10)
    redraws = []
    panel.transcript.observe(lambda change: redraws.append(time.monotonic()), names="value")

    async def scenario():
        start = time.monotonic()
        press_enter(panel, "Tell me a story in 400 words")
        await panel.task
        return time.monotonic() - start

    elapsed = asyncio.run(scenario())
    reply_words = len(duck_store.history(panel.session_id)[-1].content.split())
    assert reply_words == 400
    # at most `rate` redraws a second while tokens stream, plus one per event/state change
    assert len(redraws) <= 10 * elapsed + 10
    assert len(redraws) < reply_words / 4


# -- approvals ---------------------------------------------------------------------------


@pytest.mark.parametrize("button, status", [("approve", "success"), ("deny", "denied")])
def test_approval_buttons_decide_the_tool_call(duck_store, button, status):
    agent = duck_store.create_agent("ops")
    agent.tool(wipe, requires_approval=True)
    panel = ChatPanel(store=duck_store, agent="ops")

    async def scenario():
        press_enter(panel, "wipe(path='x')")
        await until(lambda: panel.approval_rows)
        (row,) = panel.approval_rows
        assert row.tool_name == "wipe"
        assert row.approve_button.description == "Approve"
        assert row.deny_button.description == "Deny"
        assert "agentnb-approve" in row.approve_button._dom_classes
        assert "agentnb-deny" in row.deny_button._dom_classes
        assert "path=&#x27;x&#x27;" in row.question.value
        assert 'data-status="awaiting approval"' in panel.transcript.value
        getattr(row, f"{button}_button").click()
        await panel.task

    asyncio.run(scenario())
    assert panel.approval_rows == []
    calls = [c for m in duck_store.history(panel.session_id) for c in m.tool_calls]
    assert [(c.tool_name, c.status) for c in calls] == [("wipe", status)]
    assert f'data-status="{status}"' in panel.transcript.value
    if status == "success":
        assert calls[0].output == "wiped x"


def test_stop_while_waiting_for_approval(duck_store):
    agent = duck_store.create_agent("ops")
    agent.tool(wipe, requires_approval=True)
    panel = ChatPanel(store=duck_store, agent="ops")

    async def scenario():
        press_enter(panel, "wipe(path='x')")
        await until(lambda: panel.approval_rows)
        panel.stop()
        await panel.task

    asyncio.run(scenario())
    assert panel.approval_rows == [] and not panel.busy
    calls = [c for m in duck_store.history(panel.session_id) for c in m.tool_calls]
    assert [(c.status, c.error_message) for c in calls] == [
        ("error", "interrupted before the tool call finished")]
    assert "stopped" in panel.status_line.value


# -- pickers, resume, several panels -------------------------------------------------------


def test_pickers_switch_agent_and_session(duck_store):
    alpha = duck_store.create_agent("alpha")
    beta = duck_store.create_agent("beta")
    alpha.chat("alpha's old question")
    alpha.new_session()
    alpha.chat("alpha's new question")
    beta.chat("beta's question")
    panel = ChatPanel(store=duck_store, agent="alpha")
    assert panel.agent_picker.options == ("alpha", "beta")
    # the latest session is open; sessions are listed newest first after "new session"
    assert "alpha's new question" in panel.transcript.value
    labels = [label for label, _ in panel.session_picker.options]
    assert labels[0] == "+ new session" and "alpha's new question" in labels[1]
    assert "alpha's old question" in labels[2]

    panel.session_picker.value = panel.session_picker.options[2][1]
    assert "old question" in panel.transcript.value and "new question" not in panel.transcript.value

    panel.agent_picker.value = "beta"
    assert panel.agent_name == "beta"
    assert "beta" in panel.transcript.value and "alpha" not in panel.transcript.value
    assert len(panel.session_picker.options) == 2

    panel.session_picker.value = NEW_SESSION
    assert panel.session_id is None and "new session" in panel.transcript.value
    panel.submit("beta, fresh start")
    assert len(duck_store.sessions("beta")) == 2
    assert roles(duck_store, panel.session_id) == ["user", "assistant"]


def test_a_new_panel_resumes_the_stored_session(duckdb_url):
    store = agentnb.connect(duckdb_url)
    store.create_agent("calc").tool(add)
    first = ChatPanel(store=store, agent="calc")
    first.submit("Please add(a=20, b=22)")
    session_id = first.session_id
    first.close()
    store.close()

    restarted = agentnb.connect(duckdb_url)  # a new kernel: a new store object
    try:
        panel = ChatPanel(store=restarted, agent="calc")
        assert panel.session_id == session_id
        assert "Please add(a=20, b=22)" in panel.transcript.value
        assert "</svg> add" in panel.transcript.value and "42" in panel.transcript.value
        assert "session (1 turn)" in panel.footer.value
        explicit = ChatPanel(store=restarted, agent="calc", session=str(session_id)[:8])
        assert explicit.session_id == session_id
    finally:
        restarted.close()


def test_two_panels_at_once_do_not_interfere(duck_store):
    duck_store.create_agent("slow", model_kwargs={"token_delay": 0.002})
    duck_store.create_agent("fast")
    slow = ChatPanel(store=duck_store, agent="slow")
    fast = ChatPanel(store=duck_store, agent="fast")

    async def scenario():
        press_enter(slow, "Tell me a story in 200 words")
        press_enter(fast, "question for fast")
        assert slow.busy and fast.busy
        await asyncio.gather(slow.task, fast.task)

    asyncio.run(scenario())
    assert "question for fast" in fast.transcript.value
    assert "question for fast" not in slow.transcript.value
    assert "story" in slow.transcript.value and "story" not in fast.transcript.value
    assert slow.session_id != fast.session_id
    assert roles(duck_store, slow.session_id) == ["user", "assistant"]
    assert roles(duck_store, fast.session_id) == ["user", "assistant"]
    assert len(duck_store.history(slow.session_id)[-1].content.split()) == 200


def test_same_agent_in_two_panels_keeps_each_session(duck_store, calc):
    one = ChatPanel(store=duck_store, agent="calc", session=NEW_SESSION)
    two = ChatPanel(store=duck_store, agent="calc", session=NEW_SESSION)
    one.submit("for panel one")
    two.submit("for panel two")
    one.submit("again one")
    assert one.session_id != two.session_id
    users = [m.content for m in duck_store.history(one.session_id) if m.role == "user"]
    assert users == ["for panel one", "again one"]


# -- errors -----------------------------------------------------------------------------------


def test_unknown_agent_is_a_red_line(duck_store, calc):
    panel = ChatPanel(store=duck_store, agent="calx")
    assert "agentnb-error" in panel.status_line.value
    assert "calx" in panel.status_line.value
    assert panel.send_button.disabled and panel.agent_picker.options == ("calc",)
    panel.agent_picker.value = "calc"  # recover by picking an agent
    assert panel.agent_name == "calc" and not panel.send_button.disabled


def test_empty_store_says_how_to_start(duck_store):
    panel = ChatPanel(store=duck_store)
    assert "%agent create" in panel.status_line.value
    assert panel.send_button.disabled and panel.submit("hi") is None
    duck_store.create_agent("late")
    panel.refresh_button.click()
    assert panel.agent_name == "late" and not panel.send_button.disabled


def test_model_that_cannot_start_shows_an_error_and_keeps_the_text(duck_store, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    agent = duck_store.create_agent("remote", model="openai:gpt-4o-mini")
    panel = ChatPanel(store=duck_store, agent="remote")

    async def scenario():
        press_enter(panel, "hello")
        await panel.task

    asyncio.run(scenario())
    status = panel.status_line.value
    assert "agentnb-error" in status and "OPENAI_API_KEY" in status
    assert "Traceback" not in status + panel.transcript.value
    assert panel.input.value == "hello"  # nothing was sent: the text is back in the box
    assert not panel.busy and not panel.send_button.disabled
    agent.set(model="offline")
    panel.send_button.click()
    assert panel.task.result().status == "complete"
    assert "agentnb-error" not in panel.status_line.value


def test_model_failing_mid_turn_shows_an_error_line(duck_store, monkeypatch):
    from langchain_core.language_models import BaseChatModel

    class Broken(BaseChatModel):
        @property
        def _llm_type(self) -> str:
            return "broken"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            raise ValueError("the model broke")

    duck_store.create_agent("fragile")
    panel = ChatPanel(store=duck_store, agent="fragile")
    real_model = duck_store.runtime.model
    monkeypatch.setattr(duck_store.runtime, "model", lambda spec, kwargs=None: Broken())
    panel.submit("hi")
    assert "agentnb-error" in panel.status_line.value
    assert "the model broke" in panel.status_line.value
    assert "the model broke" in panel.transcript.value
    history = duck_store.history(panel.session_id)
    assert [(m.role, m.status) for m in history] == [("user", "complete"), ("assistant", "error")]
    monkeypatch.setattr(duck_store.runtime, "model", real_model)
    assert panel.submit("hi again").result().status == "complete"
    assert "agentnb-error" not in panel.status_line.value


# -- %agent panel, agentnb.widgets ----------------------------------------------------------------


@pytest.fixture
def shell(monkeypatch, isolated_home):
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(HistoryManager, "enabled", False)
    sh = InteractiveShell()
    sh.extension_manager.load_extension("agentnb")
    yield sh
    if "agentnb" in sh.extension_manager.loaded:
        sh.extension_manager.unload_extension("agentnb")


def test_agent_panel_magic(shell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="no current agent"):
        shell.run_line_magic("agent", "panel")
    shell.run_line_magic("agent", "create calc")
    shell.run_line_magic("agent", "create other")
    panel = shell.run_line_magic("agent", "panel")
    assert isinstance(panel, ChatPanel) and panel.agent_name == "other"
    panel.submit("from the panel")
    assert panel.store is shell.run_line_magic("agent", "panel calc").store
    again = shell.run_line_magic("agent", "panel other")
    assert again.session_id == panel.session_id  # latest session resumes
    fresh = shell.run_line_magic("agent", "panel other --new")
    assert fresh.session_id is None
    with pytest.raises(UsageError, match="calx"):
        shell.run_line_magic("agent", "panel calx")


def test_widgets_module_is_lazy():
    code = textwrap.dedent(
        """
        import sys
        import agentnb, agentnb.widgets
        assert 'ipywidgets' not in sys.modules
        from agentnb.widgets import ChatPanel, SessionBrowser
        from agentnb.notebook.panel import ChatPanel as P
        assert ChatPanel is P and 'ipywidgets' in sys.modules
        print('ok')
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


# -- the session browser ------------------------------------------------------------------


@pytest.fixture
def two_sessions(duck_store, calc):
    calc.chat("Please add(a=2, b=3)")
    calc.new_session()
    calc.chat("what about bananas?")
    calc.chat("and apples?")
    other = duck_store.create_agent("other")
    other.chat("bananas for the other agent")
    return duck_store


def test_browser_lists_sessions_with_counts(two_sessions):
    from agentnb.notebook.browser import SessionBrowser

    browser = SessionBrowser(store=two_sessions, agent="calc")
    assert browser.agent == "calc" and len(browser.summaries) == 2
    table = browser.sessions_table.value
    assert "2 sessions of calc" in table
    assert "what about bananas?" in table and "Please add(a=2, b=3)" in table
    newest, oldest = browser.summaries
    assert (newest.turns, oldest.turns) == (2, 1)
    assert f">{newest.input_tokens + newest.output_tokens:,}<" in table
    labels = [label for label, _ in browser.session_list.options]
    assert labels[0].endswith("2 turns") and labels[1].endswith("1 turn")
    browser.agent_picker.value = ""  # every agent
    assert len(browser.summaries) == 3 and "bananas for the other agent" in (
        browser.sessions_table.value)


def test_browser_search_open_and_export(two_sessions, tmp_path):
    import json

    from agentnb.notebook.browser import SessionBrowser

    browser = SessionBrowser(store=two_sessions, agent="calc", export_dir=tmp_path)
    assert browser.export_md_button.disabled  # nothing open yet
    browser.search_box.value = "BANANAS"  # what Enter in the search box does
    results = browser.results.value
    assert "<mark>bananas</mark>" in results
    assert "other agent" not in results  # only calc's sessions
    (only,) = browser.session_list.options
    session_id = only[1]

    browser.session_list.value = session_id  # open it
    shown = browser.transcript.value
    assert "what about bananas?" in shown and "and apples?" in shown
    assert "turn 2 of our conversation" in shown

    browser.export_md_button.click()
    written = tmp_path / f"calc-{session_id.replace('-', '')[:8]}.md"
    assert written.exists() and "what about bananas?" in written.read_text()
    assert "wrote" in browser.status_line.value and written.name in browser.status_line.value
    browser.export_json_button.click()
    data = json.loads(written.with_suffix(".json").read_text())
    assert data["agent"] == "calc" and len(data["messages"]) == 4

    browser.search_box.value = ""  # clearing the search lists every session again
    assert len(browser.session_list.options) == 2
    assert browser.session_list.value == session_id  # the open session stays open


def test_browser_errors_are_red_lines(two_sessions):
    from agentnb.notebook.browser import SessionBrowser

    assert "agentnb-error" in SessionBrowser(store=two_sessions, agent="calx").status_line.value
    browser = SessionBrowser(store=two_sessions, agent="calc")
    browser.open_session("ffffffff")
    assert "agentnb-error" in browser.status_line.value


def test_agent_sessions_browse_magic(shell):
    from agentnb.notebook.browser import SessionBrowser

    shell.run_line_magic("agent", "create calc")
    get_store = shell.run_line_magic("agent", "panel").store
    get_store.agent("calc").chat("hello from the magic")
    browser = shell.run_line_magic("agent", "sessions --browse")
    assert isinstance(browser, SessionBrowser) and browser.agent == "calc"
    assert "hello from the magic" in browser.sessions_table.value
    table = shell.run_line_magic("agent", "sessions")  # the listing is unchanged
    assert "hello from the magic" in repr(table)
    everyone = shell.run_line_magic("agent", "sessions --all --browse")
    assert everyone.agent is None


def test_stop_before_the_turn_starts_gives_the_message_back(duck_store, calc):
    panel = ChatPanel(store=duck_store, agent="calc")

    async def scenario():
        press_enter(panel, "add(a=1, b=2)")
        panel.stop()  # before the turn's task has run at all
        assert await panel.task is None

    asyncio.run(scenario())
    assert panel.input.value == "add(a=1, b=2)"
    assert "nothing was stored" in panel.status_line.value
    assert not panel.busy and not panel.send_button.disabled and panel.stop_button.disabled
    assert panel.session_id is None or duck_store.history(panel.session_id) == []


def test_a_panel_turn_becomes_the_notebooks_current_session(monkeypatch, isolated_home):
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(HistoryManager, "enabled", False)
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance()  # the panel finds the notebook through get_ipython()
    try:
        sh.extension_manager.load_extension("agentnb")
        sh.run_line_magic("agent", "create calc")
        sh.run_line_magic("agent", "create other")
        panel = sh.run_line_magic("agent", "panel calc")
        panel.submit("hello from the panel")
        magics = sh.magics_manager.registry["AgentMagics"]
        assert (magics.current_agent, magics.current_session) == ("calc", panel.session_id)
        history = sh.run_line_magic("agent", "history")
        assert "hello from the panel" in history._repr_html_()
    finally:
        sh.extension_manager.unload_extension("agentnb")
        InteractiveShell.clear_instance()


# -- icons that need no emoji font ---------------------------------------------------------


def _needs_a_symbol_font(text: str) -> list[str]:
    """Characters of ``text`` from the emoji and symbol blocks that plain fonts lack."""
    return sorted({ch for ch in text
                   if 0x2300 <= ord(ch) <= 0x23FF or 0x1F000 <= ord(ch) <= 0x1FAFF
                   or 0xFF00 <= ord(ch) <= 0xFFEF or ord(ch) in (0xFE0F,)})


def test_icons_are_inline_svg_not_emoji(duck_store, calc):
    from agentnb.render.markup import error_html, interrupted_html, tool_card_html

    pieces = [tool_card_html("add", {"a": 1}, "success", output="2", ms=1.0),
              tool_card_html("add", {"a": 1}, "error", error="boom", collapsible=True),
              interrupted_html(), error_html("it failed")]
    for piece in pieces:
        assert _needs_a_symbol_font(piece) == [], piece
        assert "<svg" in piece and 'fill="currentColor"' in piece
    panel = ChatPanel(store=duck_store, agent="calc")
    asyncio.run(_turn(panel, "Please add(a=2, b=3)"))
    shown = [panel.transcript.value, panel.footer.value, panel.status_line.value,
             panel.input.placeholder, *(label for label, _ in panel.session_picker.options)]
    assert _needs_a_symbol_font("".join(shown)) == []


async def _turn(panel: ChatPanel, text: str) -> None:
    task = panel.submit(text)
    await task
