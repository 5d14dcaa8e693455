"""Property-based tests of every front end's input: a mistake is one clear line, never a crash.

Generated ``%agent`` lines, ``%%chat`` lines and cell bodies, and ``agentnb`` argv (built
from the commands' own declarations, with hostile values: huge numbers, NUL bytes, long
text, unbalanced quotes, unknown flags) must either work or fail with one ``UsageError``
line / exit status 2 and one stderr line; any other exception is a bug. An error line
quotes at most a short excerpt of what was typed, and nothing is written outside
``AGENTNB_HOME`` (the working directory and the user's home stay untouched).

Examples per test: ``AGENTNB_FUZZ_EXAMPLES`` (CI sets 1000; 150 by default), seeded
(derandomized), so a run is repeatable.
"""

from __future__ import annotations

import io
import os
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from agentnb.commands import REGISTRY, commands_for

EXAMPLES = int(os.environ.get("AGENTNB_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
#: The longest error line we accept (a message plus a short excerpt of the input).
MAX_LINE = 600
#: Inputs at least this long must never be quoted whole in an error line.
LONG = 80

NAMES = ["calc", "helper", "nosuch", "1bad", "a" * 70]
SETTINGS = ["temperature", "max_tokens", "model", "system", "tools", "memory", "name",
            "description", "memory.window_turns", "max_iterations", "auto_approve", "base_url",
            "api_key", "model_kwargs", "colour", "stop", "tool_timeout"]
VALUES = ["", "0", "-1", "1e3", "0.5", "abc", "true", "null", "offline", "openai:gpt-4o-mini",
          "foo", "[", "{", '["add",', '{"a": 1}', "99999999999999999999", "-5", "x\x00y",
          "add,mul", "window", '"quoted"']


def hostile_text():
    return st.one_of(
        st.sampled_from(VALUES),
        st.text(max_size=20),
        st.text(min_size=LONG, max_size=400),
        st.integers(min_value=-10**30, max_value=10**30).map(str),
        st.builds(lambda k, v: f"{k}={v}", st.sampled_from(SETTINGS), st.sampled_from(VALUES)),
    )


def tokens_for(cmd, front: str):
    """Flags of the command (as its declaration says), names and hostile values."""
    flags = []
    for _, _, spec in cmd.fields(front):
        flags.extend(spec.flags)
    flags += ["--help", "--bogus", "-z", "--json"]
    return st.one_of(st.sampled_from(flags), st.sampled_from(NAMES), hostile_text())


def quote(token: str, raw: bool) -> str:
    return token if raw else shlex.quote(token)


@st.composite
def magic_lines(draw):
    if draw(st.integers(0, 9)) == 0:  # now and then, anything at all
        return draw(st.text(max_size=200))
    cmd = draw(st.sampled_from(commands_for("notebook")))
    words = cmd.aliases[0] if cmd.aliases and draw(st.booleans()) else " ".join(cmd.path)
    tokens = draw(st.lists(tokens_for(cmd, "notebook"), max_size=6))
    raw = draw(st.booleans())
    return " ".join([words] + [quote(t, raw) for t in tokens])


@st.composite
def cli_argvs(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(st.lists(st.text(max_size=30), max_size=5))
    cmd = draw(st.sampled_from(commands_for("cli")))
    tokens = draw(st.lists(tokens_for(cmd, "cli"), max_size=6))
    return [*cmd.path, *tokens]


@st.composite
def chat_lines(draw):
    cmd = REGISTRY["chat"]
    tokens = draw(st.lists(tokens_for(cmd, "cell"), max_size=5))
    return " ".join(quote(t, draw(st.booleans())) for t in tokens)


# -- the checks ---------------------------------------------------------------------------
def _tree(path: Path, skip: Path) -> set[str]:
    out = set()
    for root, dirs, files in os.walk(path):
        if Path(root).resolve() == skip.resolve() or skip.resolve() in Path(root).resolve().parents:
            continue
        out.update(os.path.join(root, f) for f in files)
        out.update(os.path.join(root, d) + "/" for d in dirs)
    return out


def _check_error_line(line: str, typed: str) -> None:
    assert "\n" not in line.strip(), line
    assert len(line) <= MAX_LINE, (len(line), line[:200])
    for chunk in typed.split():
        if len(chunk) >= LONG:
            assert chunk not in line, "the error line quotes a long input whole"


class Watch:
    """What lies outside AGENTNB_HOME (the working directory, the user's home), to compare."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        self.before: set[str] | None = None

    def start(self) -> None:
        self.before = _tree(self.root, self.home)

    def check(self) -> None:
        assert self.before is not None
        assert _tree(self.root, self.home) == self.before, \
            "something was written outside AGENTNB_HOME"


@pytest.fixture
def sandbox(tmp_path, monkeypatch, isolated_home):
    """A working directory and a user home of their own, to prove nothing lands there."""
    work = tmp_path / "work"
    user = tmp_path / "user"
    work.mkdir()
    user.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(user))
    import agentnb

    store = agentnb.connect()
    store.create_agent("calc", system="You add numbers.")
    store.agent("calc").chat("What is 2+2?")
    store.create_agent("helper")
    store.close()
    return Watch(tmp_path, isolated_home)


@pytest.fixture
def fuzz_shell(monkeypatch, sandbox):
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(HistoryManager, "enabled", False)
    shell = InteractiveShell()
    shell.extension_manager.load_extension("agentnb")
    shell.run_line_magic("agent", "use calc")
    sandbox.start()  # after IPython made its profile folder in the user's home
    yield shell
    sandbox.check()
    shell.extension_manager.unload_extension("agentnb")


def _no_writes_outside(line: str) -> bool:
    # -o FILE writes where the user says: leave those out (they are meant to write).
    return "-o" not in line and "--output" not in line


def test_agent_lines(fuzz_shell, capsys):
    @FUZZ
    @given(magic_lines())
    def run(line):
        if not _no_writes_outside(line) or " delete" in f" {line}" and "--yes" in line:
            return
        try:
            fuzz_shell.run_line_magic("agent", line)
        except UsageError as exc:
            _check_error_line(str(exc), line)
        capsys.readouterr()

    run()


def test_chat_cells(fuzz_shell, capsys):
    @FUZZ
    @given(chat_lines(), st.one_of(st.text(max_size=200), st.sampled_from(
        ["{x}", "{{}}", '{"label": 1}', "{In[99]}", "{Err}", "add(a=1, b=2)", "", "  ",
         "{" * 50, "x\x00"])))
    def run(line, body):
        try:
            fuzz_shell.run_cell_magic("chat", line, body)
        except UsageError as exc:
            _check_error_line(str(exc), line + " " + body)
        except KeyboardInterrupt:  # pragma: no cover - nothing here interrupts
            raise
        capsys.readouterr()

    run()


def test_cli_argv(sandbox):
    from agentnb.cli import main

    sandbox.start()
    # A line that would replace this process (JupyterLab) must fail here, not end pytest
    # with exit 0 and the rest of the suite unrun.
    execs: list[tuple] = []

    def no_exec(*args):
        execs.append(args[:1])
        raise AssertionError(f"the CLI tried to exec {args[:1]}")

    @FUZZ
    @given(cli_argvs())
    def run(argv):
        line = " ".join(argv)
        if not _no_writes_outside(line) or ("delete" in argv and "--yes" in argv):
            return
        if argv[:1] == ["serve"] and "--help" not in argv:
            return  # a valid line serves until Ctrl-C (its errors: tests/test_serve_clients.py)
        if argv[:2] == ["mcp", "serve"] and "--help" not in argv:
            return  # a valid line serves until stdin closes (tests/test_mcp_server.py)
        if argv[:1] == ["tutorials"] and "--help" not in argv and (
                "--no-lab" not in argv or any(t.startswith(("-d", "--dir")) for t in argv)):
            return  # a valid line starts JupyterLab or writes to DIR (tests/test_tutorials.py)
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as mp:
            for name in ("execv", "execvp", "execvpe", "execve"):
                mp.setattr(os, name, no_exec)
            code = main(argv, out=out, err=err)
        assert not execs, (argv, execs)
        if code == 2:
            lines = err.getvalue().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("agentnb: error: "), err.getvalue()
            _check_error_line(lines[0], line)
        else:
            assert code in (0, 1), (argv, code, err.getvalue())
            assert "Traceback" not in err.getvalue()

    run()
    sandbox.check()
