"""Execute every tutorial notebook in a fresh kernel and check what it shows.

nbval (``--nbval`` on ``notebooks/``) compares stored outputs with a fresh run,
but it passes a notebook whose cell printed a UsageError and one saved
without outputs. Here each notebook runs top to bottom with nbclient, which
raises on the first failing cell, against a throwaway ``AGENTNB_HOME``; then
a few outputs a reader relies on are checked.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Callable

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def _runner():
    spec = importlib.util.spec_from_file_location("refresh_outputs", NOTEBOOKS / "refresh_outputs.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def cell_text(cell) -> str:
    """Everything a cell shows as text: streams, plain text, Markdown, errors."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
        else:
            data = out.get("data", {})
            parts.append(data.get("text/markdown") or data.get("text/plain", ""))
    return "\n".join(parts)


def assert_no_headings(cell) -> None:
    """The cell's HTML has no <h1>-<h6> (JupyterLab's table of contents lists them)."""
    for out in cell.get("outputs", []):
        page = out.get("data", {}).get("text/html", "")
        assert not re.search(r"<h[1-6]\b", page), page[:500]
        assert "text/markdown" not in out.get("data", {})


def find(nb, source: str):
    """The first code cell whose source contains ``source``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and source in cell.source:
            return cell
    raise AssertionError(f"no code cell contains {source!r}")


def check_01(nb) -> None:
    first = cell_text(find(nb, "Hello! What can you do in a notebook?"))
    assert 'You said: "Hello! What can you do in a notebook?"' in first, first
    interpolated = cell_text(find(nb, "{dataset}, which has {rows} rows"))
    assert "penguins.csv, which has 344 rows" in interpolated, interpolated
    history = cell_text(_cell_exact(nb, "%agent history"))
    assert "user: Hello! What can you do in a notebook?" in history, history
    assert_no_headings(_cell_exact(nb, "%agent history"))
    usage = cell_text(_cell_exact(nb, "%agent usage"))
    assert re.search(r"helper\s+2\s+4\b", usage), usage
    python = cell_text(find(nb, 'agent.chat("Hello from Python!")'))
    assert "This is turn 3 of our conversation" in python, python


def cell_html(cell) -> str:
    """The HTML of a cell's last rich output (what JupyterLab shows for a %%chat cell)."""
    pages = [o["data"]["text/html"] for o in cell.get("outputs", [])
             if "text/html" in o.get("data", {})]
    return pages[-1] if pages else ""


def check_02(nb) -> None:
    cell = find(nb, "What is add(a=2, b=3), and mul(a=4, b=5)?")
    chat = cell_text(cell)
    assert "add -> 5" in chat and "mul -> 20" in chat, chat
    # one output, finished, with a card per tool call
    page = cell_html(cell)
    assert len(cell.outputs) == 1 and 'class="agentnb-chat" data-status="complete"' in page
    assert page.count('class="agentnb-tool-card" data-status="success"') == 2, page
    refused = cell_text(find(nb, "%agent tool shout"))
    assert "annotate parameter" in refused, refused
    assert "power returned 1024" in cell_text(find(nb, "def power"))
    failing = cell_text(find(nb, "def divide"))
    assert "error - ZeroDivisionError" in failing, failing
    described = cell_text(find(nb, 'describe_variable(name="sales")'))
    assert "shape: (3, 2)" in described, described
    approval = cell_text(find(nb, "coder.chat("))
    assert "denied" in approval and "np.int64(295)" in approval, approval
    recorded = cell_text(find(nb, "from tool_calls order by created_at"))
    for name in ("add", "mul", "power", "divide", "describe_variable", "run_python"):
        assert name in recorded, (name, recorded)


def check_03(nb) -> None:
    sessions = cell_text(_cell_exact(nb, "%agent sessions"))
    assert "second thoughts" in sessions and "My name is Ada." in sessions, sessions
    resumed = cell_text(find(nb, "What do you remember?"))
    assert "This is turn 3 of our conversation" in resumed, resumed
    window = cell_text(find(nb, "What do you remember now?"))
    assert window.count("This is turn 3 of our conversation") == 3, window
    restart = cell_text(find(nb, "fresh = agentnb.connect()"))
    assert "session: True" in restart, restart


def check_04(nb) -> None:
    labels = cell_text(_cell_exact(nb, "labels"))
    assert "sentiment" in labels and "stars" in labels
    for value in ("positive", "negative", "neutral", "error"):
        assert value in labels
    failed = cell_text(find(nb, 'failed = labels[labels["status"] == "error"]'))
    assert "[104]" in failed and "did not match Label" in failed
    sessions = cell_text(find(nb, "json_extract_string(s.attrs, '$.kind') = 'map'"))
    assert sessions.count("map over 6 items") == 4


def check_05(nb) -> None:
    tokens = cell_text(find(nb, "sum(input_tokens) as input_tokens"))
    assert "offline" in tokens
    slowest = cell_text(find(nb, "order by execution_time_ms desc limit 2"))
    first, second = [line for line in slowest.splitlines() if "slow_sqrt" in line]
    assert "144" in first and '"x": 25' in second
    refused = cell_text(find(nb, 'store.sql("delete from messages")'))
    assert "read-only" in refused
    export = cell_text(find(nb, "%agent export --format md"))
    assert "# second session" in export and "add(a=0.1, b=0.2)" in export
    jupysql = cell_text(find(nb, "%%sql"))
    assert re.search(r"calc\s*\|\s*2\s*\|\s*5", jupysql), jupysql


def check_06(nb) -> None:
    # the panels and the browser are widgets (a reader sees them, not only their repr)
    widgets = [
        ("%agent panel", "<agentnb.ChatPanel agent='calc' session=new>"),
        ('panel = ChatPanel(agent="calc")', "agentnb.ChatPanel agent='calc'"),
        ("%agent sessions --browse --all", "SessionBrowser agent=None sessions=2"),
    ]
    for source, shown in widgets:
        cell = _cell_exact(nb, source) if source.startswith("%") else find(nb, source)
        assert any("application/vnd.jupyter.widget-view+json" in out.get("data", {})
                   for out in cell.outputs), source
        assert shown in cell_text(cell), (source, cell_text(cell))
    driven = cell_text(find(nb, 'await panel.submit("What is add(a=2, b=3)?")'))
    assert "add returned 5.0." in driven, driven
    stored = cell_text(find(nb, "panel.store.history(panel.session_id)"))
    for row in ("('user', 'What is add(a=2, b=3)?')", "('tool', '5.0')",
                "('assistant', 'add returned 5.0.')"):
        assert row in stored, (row, stored)
    history = cell_text(find(nb, "%agent history"))
    assert "user: What is add(a=2, b=3)?" in history, history
    assert "tool add(a=2, b=3) -> success" in history, history
    assert_no_headings(find(nb, "%agent history"))
    stopped = cell_text(find(nb, "panel.stop()"))
    assert "assistant - interrupted" in stopped, stopped
    assert "The offline model writes this filler text" in stopped, stopped
    approved = cell_text(find(nb, "row.approve_button.click()"))
    assert "waiting for approval: run_python" in approved, approved
    assert "run_python returned 45." in approved, approved
    reopened = cell_text(find(nb, 'again = ChatPanel(agent="calc")'))
    assert "True - 6 messages" in reopened, reopened
    # what the panel itself shows at the end (its saved widget state): both turns, one stopped
    states = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    transcripts = [m["state"].get("value", "") for m in states.get("state", {}).values()
                   if "agentnb-scroll" in str(m["state"].get("value", ""))]
    assert any("add returned 5.0." in t and "agentnb-interrupted" in t for t in transcripts)


def check_07(nb) -> None:
    served = cell_text(find(nb, "served = %agent serve calc --port 0"))
    assert re.search(r"serving calc at http://127\.0\.0\.1:\d+", served), served
    assert "from openai import OpenAI" in served and "anb_" not in served, served
    assert cell_text(find(nb, "client.models.list()")).strip() == "['calc']"
    first = cell_text(find(nb, "with_raw_response.create("))
    assert "add returned 5.0.\nTrue True" in first, first
    streamed = cell_text(find(nb, "stream=True, stream_options"))
    assert streamed.startswith("True ") and len(streamed.split()) == 13, streamed
    again = cell_text(find(nb, "X-Agentnb-Session\": session"))
    assert "add returned 30.0." in again, again
    assert "400 " in cell_text(find(nb, "except openai.BadRequestError"))
    listed = cell_text(_cell_exact(nb, "%agent sessions calc"))
    assert "What is add(a=2, b=3)?" in listed and "Tell me a story in 12 words" in listed, listed
    export = cell_text(find(nb, "store.export(session"))
    assert "`add(a=2, b=3)` -> success: 5.0" in export and "add returned 30.0." in export, export
    record = cell_text(find(nb, "/api/sessions/"))
    assert "('tool', '30.0', [])" in record, record
    assert "stopped the server at http://127.0.0.1:" in cell_text(
        _cell_exact(nb, "%agent serve --stop"))
    # the key never reaches an output
    assert all("anb_" not in cell_text(c) for c in nb.cells if c.cell_type == "code")


def check_08(nb) -> None:
    tools = cell_text(_cell_exact(nb, "%agent mcp tools demo"))
    assert "demo_multiply" in tools and "Multiply two integers." in tools, tools
    chat = cell_text(find(nb, "What is demo_multiply(a=6, b=7)?"))
    assert "demo_multiply returned 42." in chat, chat
    words = cell_text(find(nb, 'demo_word_count(text="the quick brown fox")'))
    assert "demo_word_count returned 4." in words, words
    sql = cell_text(find(nb, "%agent sql select tool_name"))
    assert re.search(r"demo_multiply .* success\s+42\s+demo", sql), sql
    python = cell_text(find(nb, 'calc.chat("demo_multiply(a=12, b=12)")'))
    assert "('demo_multiply', '144', {'server': 'demo'})" in python, python
    served = cell_text(find(nb, "stdio_client(params"))
    assert "['chat', 'get_session', 'list_agents', 'list_sessions', 'query_history', " \
           "'search_history']" in served, served
    assert "demo_multiply returned 42." in served and "'rows': [[4]]" in served, served
    sessions = cell_text(_cell_exact(nb, "%agent sessions"))
    assert "demo_multiply(a=3, b=14)" in sessions, sessions


def _cell_exact(nb, source: str):
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip() == source:
            return cell
    raise AssertionError(f"no code cell is exactly {source!r}")


CHECKS: dict[str, Callable] = {
    "01-quickstart.ipynb": check_01,
    "02-tools.ipynb": check_02,
    "03-sessions-memory.ipynb": check_03,
    "04-map-dataframe.ipynb": check_04,
    "05-history-sql.ipynb": check_05,
    "06-chat-panel.ipynb": check_06,
    "07-serve-http.ipynb": check_07,
    "08-mcp.ipynb": check_08,
}


def _errors(nb) -> list[tuple[str, str]]:
    """(source, text) of the cells that failed: a UsageError or a traceback in the output."""
    bad = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        # nbclient raises on an exception; a UsageError is only stderr text
        if "raises-exception" in cell.metadata.get("tags", []):
            continue
        text = cell_text(cell)
        if "UsageError" in text or "Traceback" in text:
            bad.append((cell.source, text))
    return bad


@pytest.fixture(scope="module")
def working_copy(tmp_path_factory) -> Path:
    """The tutorials as a reader runs them: copied by ``agentnb tutorials`` (the README's
    quickstart) to a folder of their own."""
    from agentnb import cli

    target = tmp_path_factory.mktemp("tutorials")
    assert cli.main(["tutorials", "--no-lab", "--dir", str(target)]) == 0
    return target


def _git_status(path: Path) -> str:
    import subprocess

    proc = subprocess.run(["git", "status", "--porcelain", "--", str(path)], cwd=path,
                          capture_output=True, text=True)
    if proc.returncode != 0:  # not a git checkout (an unpacked sdist): nothing to compare
        pytest.skip(f"git status: {proc.stderr.strip()}")
    return proc.stdout


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom_twice(path: Path, tmp_path: Path,
                                           working_copy: Path) -> None:
    """A reader's run: the working copy, executed and saved (as JupyterLab autosaves it),
    then "Restart Kernel and Run All" on the same store: no error either time, and the
    repository's notebook is untouched."""
    import nbformat

    home = tmp_path / "agentnb-home"
    home.mkdir()
    before = _git_status(NOTEBOOKS)
    copy = working_copy / path.name
    assert copy.read_bytes() == path.read_bytes()
    nb = _runner().execute(copy, home)
    assert _errors(nb) == []
    CHECKS.get(path.name, lambda nb: None)(nb)
    # the run used the throwaway store, and only it
    assert (home / "agentnb.duckdb").exists()
    nbformat.write(nb, copy)
    again = _runner().execute(copy, home)  # the same agents and sessions exist now
    assert _errors(again) == []
    assert _git_status(NOTEBOOKS) == before


def test_every_notebook_is_checked_and_has_a_kernelspec() -> None:
    import nbformat

    assert PATHS, "no notebooks found"
    for path in PATHS:
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3", path.name
        assert path.name in CHECKS, f"add output checks for {path.name}"
        # outputs are stored, so that a reader sees them and nbval compares them
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        # how to switch to a real provider, and never a key
        text = "\n".join(c.source for c in nb.cells)
        assert "OPENAI_API_KEY" in text, path.name
        assert not re.search(r"sk-[A-Za-z0-9]{16,}", text), path.name
