"""``%%chat``: one turn from a cell, streamed into one output, stored.

Every test drives a real InteractiveShell with agentnb loaded and the built-in
offline model, and checks what the user sees (the outputs the cell published,
the UsageError line, the cell's result) and what the store holds.
"""

from __future__ import annotations

import re
import threading
import time
import _thread

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from pydantic import BaseModel

import agentnb
from agentnb.events import Token, ToolCallFinished, ToolCallStarted, TurnStarted
from agentnb.notebook.chat import RichView, code_of, json_of, parse_chat_line
from agentnb.notebook.extension import get_magics
from agentnb.notebook.interpolate import ErrorHistory, interpolate
from agentnb.render.live import LiveTurn

ADD = '''
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''


@pytest.fixture
def shell(monkeypatch, isolated_home):
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(HistoryManager, "enabled", False)
    # the instance: IPython.display.display() (a Reply shown again) goes to it
    InteractiveShell.clear_instance()
    sh = InteractiveShell.instance()
    sh.extension_manager.load_extension("agentnb")
    get_magics(sh).chat_display = "rich"  # draw as in a notebook (no kernel here)
    yield sh
    if "agentnb" in sh.extension_manager.loaded:
        sh.extension_manager.unload_extension("agentnb")
    InteractiveShell.clear_instance()


@pytest.fixture
def nb(shell):
    return get_magics(shell)


def chat(shell, cell: str, line: str = ""):
    """Run a %%chat cell; (result, published outputs)."""
    with capture_output() as cap:
        result = shell.run_cell_magic("chat", line, cell)
    return result, cap.outputs


def messages(nb, session=None):
    return nb.store.history(session or nb.current_session)


def calc(shell):
    shell.run_line_magic("agent", "create calc")
    shell.run_cell(ADD)
    shell.run_line_magic("agent", "tool add")


# -- streaming into one output --------------------------------------------------------------


def test_chat_streams_one_output_with_tool_card_and_footer(shell, nb):
    calc(shell)
    reply, outputs = chat(shell, "Please add(a=2, b=3)")

    assert reply.text == "add returned 5."
    assert reply.status == "complete"
    # one display, then updates of that same display only
    assert outputs[0].update is False
    ids = {o.transient["display_id"] for o in outputs}
    assert len(ids) == 1 and all(o.update for o in outputs[1:])
    final = outputs[-1].data
    page = final["text/html"]
    assert 'class="agentnb-chat" data-status="complete"' in page
    card = re.search(r'<details class="agentnb-tool-card" data-status="success".*?</details>', page)
    assert card and "add" in card.group(0) and "a=2, b=3" in card.group(0)
    assert ">5</pre>" in card.group(0)
    assert "<p>add returned 5.</p>" in page
    assert re.search(r"offline · \d+ in / \d+ out tokens · 1 tool call · session [0-9a-f]{8}",
                     page)
    plain = final["text/plain"]
    assert "[tool] add(a=2, b=3): ok" in plain and "-> 5" in plain
    assert "add returned 5." in plain

    # the store has the turn, with the tool call
    stored = messages(nb)
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert stored[0].content == "Please add(a=2, b=3)"
    call = stored[1].tool_calls[0]
    assert (call.tool_name, call.input_args, call.output, call.status) == (
        "add", {"a": 2, "b": 3}, "5", "success")


def test_result_is_the_reply_in_underscore_shown_once(shell, nb):
    calc(shell)
    with capture_output() as cap:
        shell.run_cell("%%chat\nPlease add(a=1, b=1)")
    reply = shell.user_ns["_"]
    assert reply.text == "add returned 2."
    assert reply.tool_calls[0].output == "2"
    # the displayhook added nothing: every output is the streamed display
    assert len({o.transient["display_id"] for o in cap.outputs}) == 1
    assert nb.last_reply is reply
    # displayed again later (another cell), it shows the answer with its card
    with capture_output() as again:
        shell.run_cell("_")
    page = again.outputs[-1].data["text/html"]
    assert "add returned 2." in page and "agentnb-tool-card" in page


def test_updates_are_coalesced_for_a_long_answer(shell, nb):
    shell.run_line_magic("agent", "create talker")
    nb.stream_rate = 20
    started = time.monotonic()
    reply, outputs = chat(shell, "Tell me a story in 3000 words")
    seconds = time.monotonic() - started
    assert len(reply.text.split()) == 3000
    # ~3000+ tokens streamed; at most 20 updates a second (+ first and last display)
    assert len(outputs) <= seconds * 20 + 3
    assert len(outputs) < 300
    assert outputs[-1].data["text/plain"].startswith(reply.text[:200])


def test_rich_view_coalesces_tokens_but_shows_tool_cards_at_once(shell):
    now = [0.0]
    live = LiveTurn(message="hi")
    view = RichView(live, agent="calc", session=None, fmt="markdown", rate=20,
                    clock=lambda: now[0])
    with capture_output() as cap:
        view.event(TurnStarted(session_id="00000000-0000-0000-0000-000000000000",
                               agent="calc", model="offline"))
        view.start()
        for i in range(1000):  # one token a millisecond for one second
            now[0] += 0.001
            view.event(Token(text=f"w{i} "))
        sent_for_tokens = view.updates
        view.event(ToolCallStarted(call_id="c1", tool_name="add", input_args={"a": 1}))
        after_card = view.updates
        view.event(ToolCallFinished(call_id="c1", tool_name="add", input_args={"a": 1},
                                    status="success", output="2", execution_time_ms=3))
        view.finish()
    assert 19 <= sent_for_tokens <= 22  # start + one every 50 ms
    assert after_card == sent_for_tokens + 1
    assert view.updates == after_card + 2 == len(cap.outputs)
    final = cap.outputs[-1].data["text/html"]
    assert "w999" in final and 'data-status="success"' in final


def test_a_long_answer_is_redrawn_less_often_to_cap_the_bytes(shell):
    now = [0.0]
    live = LiveTurn(message="hi")
    view = RichView(live, agent="calc", session=None, fmt="markdown", rate=20,
                    clock=lambda: now[0], max_bytes_per_second=100_000)
    words = ("lorem ipsum dolor sit amet " * 4000).split()
    with capture_output() as cap:
        view.start()
        for word in words:  # 20,000 tokens, 1,000 a second
            now[0] += 0.001
            view.event(Token(text=word + " "))
        view.finish()
    seconds = now[0]
    # never more than the cap, but for the final page (HTML and the whole text)
    page = len(cap.outputs[-1].data["text/html"])
    assert view.bytes_sent <= seconds * 100_000 + 3 * page  # the last (html + text) unpaid
    assert view.updates < seconds * 20 / 2  # long pages: well under the 20/s token cap
    # the text/plain of an update in flight is a progress line, not the answer again
    middle = cap.outputs[len(cap.outputs) // 2].data["text/plain"]
    assert middle.startswith("calc is answering… (") and len(middle) < 300
    assert re.search(r"[\d,]+ tokens so far · streaming…",
                     cap.outputs[len(cap.outputs) // 2].data["text/html"])
    assert cap.outputs[-1].data["text/plain"].startswith("lorem ipsum dolor")


def test_no_stream_shows_the_answer_once_at_the_end(shell, nb):
    shell.run_line_magic("agent", "create talker")
    reply, outputs = chat(shell, "Tell me a story in 500 words", "--no-stream")
    assert len(outputs) == 2  # the "…" placeholder, then the whole answer
    assert "agentnb-chat-waiting" in outputs[0].data["text/html"]
    assert reply.text.split()[-1].rstrip(".") in outputs[-1].data["text/plain"]


def test_text_display_prints_as_it_streams(shell, nb, capsys):
    calc(shell)
    nb.chat_display = "text"
    assert shell.run_cell_magic("chat", "", "Please add(a=4, b=5)") is None  # no Out[n]
    reply = shell.user_ns["_"]
    out = capsys.readouterr().out
    assert "[tool] add(a=4, b=5) …" in out
    assert "[tool] add(a=4, b=5): ok" in out and "-> 9" in out
    assert "add returned 9." in out
    assert re.search(r"-- offline · \d+ in / \d+ out tokens · 1 tool call", out)
    assert reply.text == "add returned 9."


def test_auto_display_is_text_without_a_kernel(nb):
    nb.chat_display = "auto"
    assert nb.rich_display() is False
    nb.chat_display = "RICH"
    assert nb.rich_display() is True


# -- which agent and session ------------------------------------------------------------


def test_name_new_and_session_pick_the_conversation(shell, nb):
    shell.run_line_magic("agent", "create first")
    shell.run_line_magic("agent", "create second")
    chat(shell, "hello first", "first")
    assert nb.current_agent == "first"
    first_session = nb.current_session

    chat(shell, "again", "")  # the current agent, same session
    assert nb.current_session == first_session
    assert len(messages(nb)) == 4

    chat(shell, "fresh start", "first --new")
    assert nb.current_session != first_session
    assert [m.content for m in messages(nb)][0] == "fresh start"

    reply, _ = chat(shell, "back to the first one", f"first -s {str(first_session)[:8]}")
    assert reply.session_id == first_session == nb.current_session
    assert len(messages(nb, first_session)) == 6

    chat(shell, "hi second", "second")
    assert nb.current_agent == "second"
    assert len(nb.store.sessions("second")) == 1


def test_no_tools_and_model_override(shell, nb):
    calc(shell)
    reply, _ = chat(shell, "Please add(a=2, b=3)", "--no-tools")
    assert reply.tool_calls == []
    assert "You said" in reply.text
    reply, _ = chat(shell, "hello", "--model offline:other")
    assert reply.model == "offline:other"
    assert messages(nb)[-1].model == "offline:other"
    assert nb.store.agent("calc").config.model == "offline"  # for this turn only


def test_schema_returns_a_validated_instance(shell, nb):
    class Label(BaseModel):
        sentiment: str
        stars: int

    shell.user_ns["Label"] = Label
    shell.run_line_magic("agent", "create labeller")
    result, outputs = chat(shell, "Great product, 5 stars", "--schema Label")
    assert isinstance(result, Label)
    assert result.stars == 5
    assert nb.last_reply.data == result


def test_format_code_puts_the_code_in_a_new_cell(shell, nb):
    shell.run_line_magic("agent", "create coder")
    reply, outputs = chat(shell, "write print('hi')", "--format code")
    # the offline model writes no fenced block: the whole answer is the code
    assert shell.rl_next_input == code_of(reply.text) == reply.text
    assert "the code is in a new cell below" in outputs[-1].data["text/plain"]


def test_format_json_and_text(shell, nb):
    shell.run_line_magic("agent", "create echo")
    reply, outputs = chat(shell, 'Answer with {{"a": 1}}', "--format json")
    assert reply.data == {"a": 1}  # found in the offline model's quote of the message
    assert nb.store.history(reply.session_id)[0].content == 'Answer with {"a": 1}'
    reply, outputs = chat(shell, "*not bold*", "--format text")
    page = outputs[-1].data["text/html"]
    assert "<pre" in page and "*not bold*" in page and "<em>" not in page


def test_code_and_json_extraction():
    assert code_of("Here:\n```python\nx = 1\n```\nand\n```\ny = 2\n```") == "x = 1\n\ny = 2"
    assert code_of("just text") == "just text"
    assert json_of('```json\n{"k": [1, 2]}\n```') == {"k": [1, 2]}
    assert json_of('The answer is [1, 2].') == [1, 2]
    with pytest.raises(ValueError):
        json_of("nothing here")


# -- {var} ---------------------------------------------------------------------------------


def test_interpolation_rules():
    ns = {"name": "penguins.csv", "rows": 344, "total": 1234.5, "d": {"k": "v"},
          "In": ["", "x = 1"], "Out": {1: 42}, "Err": ErrorHistory({3: "Traceback ... E"})}
    assert interpolate("{name} has {rows} rows", ns) == "penguins.csv has 344 rows"
    assert interpolate("{total:,.1f} {name!r} {d[k]}", ns) == "1,234.5 'penguins.csv' v"
    assert interpolate("{{literal}} and {unknown} and {name.nope}", ns) == (
        "{literal} and {unknown} and {name.nope}")
    assert interpolate('json {"a": 1} and a lone { brace }', ns) == (
        'json {"a": 1} and a lone { brace }')
    assert interpolate("{In[1]} -> {Out[1]} / {Out[9]}", ns) == "x = 1 -> 42 / {Out[9]}"
    assert interpolate("{Err}", ns) == "Traceback ... E"
    assert interpolate("{Err[3]}", ns) == "Traceback ... E"
    assert interpolate("{Err}", {"Err": ErrorHistory()}) == ""


def test_cell_interpolates_notebook_values_and_errors(shell, nb):
    shell.run_line_magic("agent", "create helper")
    shell.run_cell("dataset = 'penguins.csv'\nrows = 344")
    chat(shell, "About {dataset} ({rows} rows), {{braces}}, {missing}.")
    assert messages(nb)[0].content == "About penguins.csv (344 rows), {braces}, {missing}."

    shell.run_cell("def broken():\n    return 1 / 0\n\nbroken()")
    chat(shell, "Why?\n{Err}")
    sent = messages(nb)[-2].content
    assert sent.startswith("Why?\nTraceback (most recent call last):")
    assert "in broken" in sent and sent.endswith("ZeroDivisionError: division by zero")
    assert "IPython/core" not in sent  # the kernel's own frames are left out


def test_in_and_out_history(shell, nb):
    shell.run_line_magic("agent", "create helper")
    shell.run_cell("6 * 7", store_history=True)
    count = shell.execution_count - 1
    chat(shell, f"{{In[{count}]}} gave {{Out[{count}]}}")
    assert messages(nb)[0].content == "6 * 7 gave 42"


# -- approval --------------------------------------------------------------------------------


@pytest.mark.parametrize("answer, status", [("y", "success"), ("n", "denied"), ("", "denied")])
def test_tool_needing_approval_asks_at_a_prompt(shell, nb, monkeypatch, answer, status):
    prompts = []

    def fake_input(prompt=""):
        prompts.append(prompt)
        return answer

    monkeypatch.setattr("builtins.input", fake_input)
    shell.run_line_magic("agent", "create coder --tools run_python")
    shell.user_ns["numbers"] = [1, 2, 3]
    reply, outputs = chat(shell, 'run_python(code="sum(numbers)")')
    assert prompts == ["Approve run_python(code='sum(numbers)')? [y/N] "]
    # the card showed "awaiting approval" before the prompt
    assert any('data-status="awaiting approval"' in o.data["text/html"] for o in outputs)
    call = reply.tool_calls[0]
    assert call.status == status
    if status == "success":
        assert call.output == "6"


def test_no_stdin_means_denied(shell, nb, monkeypatch):
    from IPython.core.error import StdinNotImplementedError

    def no_stdin(prompt=""):
        raise StdinNotImplementedError("raw_input was called, but this frontend does not "
                                       "support input requests.")

    monkeypatch.setattr("builtins.input", no_stdin)
    shell.run_line_magic("agent", "create coder --tools run_python")
    reply, _ = chat(shell, 'run_python(code="1 + 1")')
    assert reply.tool_calls[0].status == "denied"


# -- interruption ----------------------------------------------------------------------------


def test_interrupt_keeps_the_partial_answer_marked(shell, nb, monkeypatch):
    from agentnb.models import OfflineChatModel

    store = nb.store
    store.create_agent("slow", model="offline", model_kwargs={"token_delay": 0.005})
    shell.run_line_magic("agent", "use slow")
    # Interrupt once the answer has begun to stream (an event, not a delay: on a busy
    # machine a fixed delay can land before the first token).
    streaming = threading.Event()
    chunks = OfflineChatModel._chunks

    def signalling_chunks(self, plan, kwargs):
        for i, chunk in enumerate(chunks(self, plan, kwargs)):
            if i == 3:
                streaming.set()
            yield chunk

    monkeypatch.setattr(OfflineChatModel, "_chunks", signalling_chunks)

    done = threading.Event()

    def interrupt_once_streaming() -> None:
        if streaming.wait(60) and not done.is_set():
            _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt_once_streaming, daemon=True)
    interrupter.start()
    try:
        with capture_output() as cap:
            with pytest.raises(KeyboardInterrupt):
                shell.run_cell_magic("chat", "", "Tell me a story in 5000 words")
    finally:
        done.set()
        streaming.set()
        interrupter.join(60)
    final = cap.outputs[-1].data
    assert 'data-status="interrupted"' in final["text/html"]
    assert "agentnb-interrupted" in final["text/html"]
    assert "[interrupted]" in final["text/plain"]
    stored = messages(nb)
    assert stored[-1].role == "assistant" and stored[-1].status == "interrupted"
    partial = stored[-1].content
    assert 0 < len(partial.split()) < 5000
    assert partial[:100] in final["text/plain"]
    assert nb.last_reply.status == "interrupted"
    # the footer has the stored (estimated) token counts, not zeros
    counts = re.search(r"offline · ([\d,]+) in / ([\d,]+) out tokens", final["text/plain"])
    assert counts and int(counts[1].replace(",", "")) > 0
    assert int(counts[2].replace(",", "")) == stored[-1].output_tokens > 0
    # shown as one line, not a traceback through agentnb
    from agentnb.notebook.chat import TurnInterrupted

    assert TurnInterrupted("x")._render_traceback_() == ["KeyboardInterrupt: x"]
    assert issubclass(TurnInterrupted, KeyboardInterrupt)
    # the session goes on
    reply, _ = chat(shell, "Still there?")
    assert reply.status == "complete"
    assert messages(nb)[-1].content == reply.text


# -- mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("line, cell, message", [
    ("", "   \n ", "the cell is empty"),
    ("nobody", "hi", "no agent named 'nobody'"),
    ("--bogus", "hi", "unrecognized arguments: --bogus"),
    ("--format html", "hi", "--format: must be one of markdown, text, code or json"),
    ("-s 1234 --new", "hi", "either -s SESSION or --new"),
    ("-s ffffffff", "hi", "no session ffffffff (see %agent sessions)"),
    ("--schema Missing", "hi", "no 'Missing' in the notebook"),
    ("--schema helper_text", "hi", "is a str, not a pydantic model"),
    ("--model nonsense:", "hi", "unknown model provider 'nonsense'"),
    ("--model anthropic:claude-x", "hi", "pip install 'agentnb[anthropic]'"),
    ('"unclosed', "hi", "quotation"),
])
def test_mistakes_are_one_line_usage_errors_and_store_nothing(shell, nb, line, cell, message):
    shell.run_line_magic("agent", "create helper")
    shell.user_ns["helper_text"] = "not a model"
    with capture_output() as cap:
        with pytest.raises(UsageError) as err:
            shell.run_cell_magic("chat", line, cell)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert cap.outputs == []  # nothing drawn
    assert fresh_counts() == 0


def fresh_counts() -> int:
    with agentnb.connect() as s:
        return int(s.sql("select count(*) as n from messages")["n"][0])


def test_no_current_agent_says_what_to_type(shell):
    with pytest.raises(UsageError, match="%agent create NAME"):
        shell.run_cell_magic("chat", "", "hi")


def test_help_lists_every_option(shell, capsys):
    assert shell.run_cell_magic("chat", "--help", " ") is None
    out = capsys.readouterr().out
    for option in ("-s SESSION", "--new", "--model SPEC", "--format", "--schema NAME",
                   "--no-stream", "--no-tools", "{var}"):
        assert option in out, option


def test_parse_chat_line():
    args = parse_chat_line("calc -s ab12 --model offline --format code --no-stream --no-tools")
    assert (args.agent, args.session, args.model, args.format, args.stream, args.tools) == (
        "calc", "ab12", "offline", "code", False, False)


def test_unload_removes_chat(shell):
    shell.run_line_magic("unload_ext", "agentnb")
    assert "chat" not in shell.magics_manager.magics["cell"]
    shell.run_cell("1/0")  # the error hook is gone too: no exception from it


def test_terminal_ipython_chat_exits_cleanly(tmp_path):
    """A terminal IPython session with a %%chat prints the answer as it streams and exits
    without duckdb's "nanobind: leaked ..." noise (the store is closed at exit)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    ipython = Path(sys.executable).with_name("ipython")
    script = "%load_ext agentnb\n%agent create t\n%%chat\nhello there\n\n\nprint(_.status)\n"
    env = {**os.environ, "AGENTNB_HOME": str(tmp_path), "IPYTHONDIR": str(tmp_path / "ipy")}
    out = subprocess.run([str(ipython), "--simple-prompt", "--no-banner",
                          "--HistoryManager.enabled=False"],
                         input=script, capture_output=True, text=True, timeout=120, env=env)
    assert 'You said: "hello there"' in out.stdout, out.stdout
    assert "-- offline · " in out.stdout and "complete" in out.stdout
    assert "leaked" not in out.stdout + out.stderr, out.stderr[-2000:]


def test_a_failing_model_is_one_line_the_turn_is_kept_and_the_session_goes_on(
        shell, nb, monkeypatch):
    """A real client (langchain-openai) whose server answers 404: %%chat says so in one
    UsageError line, the turn is stored marked error, the key shows nowhere, and the
    next cell on a working model continues the same session."""
    from tests.openai_server import OpenAIServer

    secret = "sk-chat-magic-test-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with OpenAIServer() as server:
        nb.store.create_agent("remote", model="openai:test-model", model_kwargs={
            "base_url": server.url + "/missing", "max_retries": 0, "timeout": 10})
        with capture_output() as cap:
            with pytest.raises(UsageError) as err:
                shell.run_cell_magic("chat", "remote", "hello?")
        message = str(err.value)
        assert message.startswith("%%chat: the turn failed:") and "\n" not in message
        assert "stored, marked error" in message
        shown = "".join(o.data["text/html"] + o.data["text/plain"] for o in cap.outputs)
        assert secret not in message + shown + cap.stdout + cap.stderr
        assert server.requests and server.requests[0]["headers"]["Authorization"] == (
            f"Bearer {secret}")  # the key went to the server, and only there
        stored = messages(nb)
        assert [(m.role, m.status) for m in stored] == [("user", "complete"),
                                                        ("assistant", "error")]
        session = nb.current_session
        reply, _ = chat(shell, "still there?", "--model offline")
        assert reply.status == "complete" and reply.session_id == session
    with agentnb.connect() as fresh:
        dump = repr(fresh.sql_rows("select * from messages")) + repr(
            fresh.sql_rows("select * from agents"))
    assert secret not in dump


def test_missing_tools_are_said_once_per_session_in_notebook_words(shell, nb, capsys, caplog):
    """An agent whose config names a tool this kernel does not define: the note says what
    to type in a notebook (%agent tool), once per session, and no Python warning repeats it."""
    import logging

    shell.run_line_magic("agent", "create calc --tools add")
    nb.chat_display = "text"
    with caplog.at_level(logging.WARNING):
        shell.run_cell_magic("chat", "", "hello")
        first = capsys.readouterr().out
        shell.run_cell_magic("chat", "", "hello again")
        second = capsys.readouterr().out
        shell.run_cell_magic("chat", "--new", "a new session")
        third = capsys.readouterr().out
    note = "tools not available in this kernel: add (define them, then %agent tool add)"
    assert note in first and note not in second and note in third
    assert "agent.tool" not in caplog.text  # the Python API's wording is not used here


def test_missing_tools_in_the_python_api_are_logged_once_per_session(isolated_home, caplog):
    import logging

    store = agentnb.connect()
    agent = store.create_agent("calc", tools=["add"])
    with caplog.at_level(logging.WARNING, logger="agentnb.agent"):
        agent.chat("one")
        agent.chat("two")
    assert caplog.text.count("tools not available in this process: add") == 1
    assert "agent.tool" in caplog.text
    store.close()


# -- terminal IPython -------------------------------------------------------------------------

INTERRUPT = '''
from agentnb.notebook.extension import get_magics

# a turn stopped by Ctrl-C, as drive() does it: KeyboardInterrupt thrown into the stream
events = get_magics().current_handle().stream("Tell me a story in 2000 words")
for event in events:
    if type(event).__name__ == "Token":
        break
try:
    events.throw(KeyboardInterrupt)
    for event in events:
        pass
except (KeyboardInterrupt, StopIteration):
    pass
'''


def test_terminal_ipython_shows_no_empty_out_prompt_and_marks_interrupted_history(tmp_path):
    """A real terminal IPython: %%chat prints the answer and leaves no empty ``Out[n]:``
    (``_`` is still the Reply); the missing-tools note comes once a session, in the
    magics' words; ``%agent history`` marks an interrupted answer."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "interrupt.py").write_text(INTERRUPT)
    ipython = Path(sys.executable).with_name("ipython")
    script = "\n".join([
        "%load_ext agentnb",
        "%agent create t --tools add",
        "%%chat", "hello there", "", "",
        "%%chat", "and again", "", "",
        "print('RESULT', type(_).__name__, _.status, _.text[:8])",
        f"%run {tmp_path / 'interrupt.py'}",
        "%agent history",
        "",
    ])
    env = {**os.environ, "AGENTNB_HOME": str(tmp_path / "home"),
           "IPYTHONDIR": str(tmp_path / "ipy")}
    proc = subprocess.run([str(ipython), "--simple-prompt", "--no-banner", "--colors=NoColor",
                           "--HistoryManager.enabled=False"],
                          input=script, capture_output=True, text=True, timeout=180, env=env)
    out = proc.stdout
    assert 'You said: "hello there"' in out and 'You said: "and again"' in out, out
    # an Out prompt with nothing after it before the next In prompt
    assert not re.search(r"Out\[\d+\]: *\n\s*(In \[|$)", out), out
    assert "RESULT ChatReply complete You said" in out, out
    note = "tools not available in this kernel: add (define them, then %agent tool add)"
    assert out.count(note) == 1, out
    tail = out.rsplit("t · session", 1)[-1]
    assert re.search(r"assistant: The offline model writes this filler text[^\n]*\n"
                     r"(?:[^\n]*\n)*?\s+\[interrupted\]", tail), tail
    assert "leaked" not in out + proc.stderr, proc.stderr[-2000:]


def test_history_marks_interrupted_and_failed_answers_in_both_faces():
    from types import SimpleNamespace as Msg

    from agentnb.render.results import Transcript

    messages = [
        Msg(role="user", content="# Plan\nwrite", tool_calls=[], status="complete", attrs={}),
        Msg(role="assistant", content="Once upon", tool_calls=[], status="interrupted",
            attrs={}),
        Msg(role="user", content="again", tool_calls=[], status="complete", attrs={}),
        Msg(role="assistant", content="", tool_calls=[], status="error",
            attrs={"error": "the server said 500"}),
    ]
    text = Transcript(messages, title="t · session 1234abcd").to_text()
    assert text.splitlines() == [
        "t · session 1234abcd",
        "     user: # Plan",
        "           write",
        "assistant: Once upon",
        "           [interrupted]",
        "     user: again",
        "assistant:",
        "           [error] the server said 500",
    ]
    page = Transcript(messages, title="t", agent_name="t")._repr_html_()
    # no heading at all, neither for the roles nor for a "# Plan" in a message
    assert not re.search(r"<h[1-6]\b", page), page
    assert 'role="heading" aria-level="1"' in page and ">Plan</p>" in page
    assert "agentnb-interrupted" in page and "the server said 500" in page
    assert "agentnb-icon-stop" in page and "agentnb-icon-warning" in page
