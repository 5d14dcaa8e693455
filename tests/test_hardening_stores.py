"""Issue 9, items 5 and 6: broken, unreachable and missing stores.

* A damaged DuckDB file (random bytes, truncated, zero bytes), a SQLite file
  that is not a database, an unreadable file, a read-only or uncreatable
  ``AGENTNB_HOME``, a server that does not answer: one line that names the
  file (or URL) and what to do, from the CLI (exit 2) and ``%agent``
  (UsageError); the file's bytes are unchanged.
* Only commands that write (``init``, ``agents create``, ``chat``, ``db
  upgrade``) create a store; the others say there is none at that address
  and create nothing (not even the folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import duckdb
import pytest

import agentnb
from agentnb.cli import main
from agentnb.errors import StoreNotFoundError, StoreUnavailableError


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_error_line(code, out, err, *fragments):
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("agentnb: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- item 6: reading commands do not create a store -------------------------------------

READING = [
    ["agents", "list"], ["agents", "show", "calc"], ["sessions", "list"], ["usage"],
    ["db", "current"], ["sql", "select 1"], ["keys", "list", "calc"],
    ["sessions", "export", "abcd1234"],
]


@pytest.mark.parametrize("argv", READING, ids=[" ".join(a) for a in READING])
@pytest.mark.parametrize("kind", ["duckdb", "sqlite"])
def test_a_reading_command_on_a_typo_creates_nothing(capsys, tmp_path, argv, kind):
    folder = tmp_path / "no" / "such" / "dir"
    url = f"{kind}:///{folder}/x.db"
    code, out, err = _run(capsys, "--db", url, *argv)
    _one_error_line(code, out, err, "no agentnb store at", str(folder / "x.db"), "agentnb init")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("as_json", [False, True])
def test_status_on_a_missing_store_says_so_and_creates_nothing(capsys, tmp_path, as_json):
    # status answers "where am I": no store yet is its answer (exit 0), and it makes none
    folder = tmp_path / "no" / "such" / "dir"
    code, out, err = _run(capsys, "--db", f"duckdb:///{folder}/x.db", "status",
                          *(["--json"] if as_json else []))
    assert code == 0 and err == "", err
    if as_json:
        import json

        data = json.loads(out)
        assert data["exists"] is False and data["store"].endswith("/no/such/dir/x.db")
    else:
        assert "not created yet" in out and "agentnb init" in out
    assert not (tmp_path / "no").exists()


def _notebook_shell(monkeypatch):
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.setattr(HistoryManager, "enabled", False)
    shell = InteractiveShell()
    shell.extension_manager.load_extension("agentnb")
    return shell


NOTEBOOK_READING = ["agents", "list", "show calc", "sessions", "history", "usage",
                    "sql select 1", "keys list calc", "export abcd1234", "tools"]


def test_agent_magic_reading_commands_create_no_store(monkeypatch, tmp_path):
    from IPython.core.error import UsageError

    folder = tmp_path / "no" / "such" / "dir"
    monkeypatch.setenv("AGENTNB_DATABASE_URL", f"duckdb:///{folder}/x.duckdb")
    shell = _notebook_shell(monkeypatch)
    try:
        for line in NOTEBOOK_READING:
            try:
                result = shell.run_line_magic("agent", line)
            except UsageError as exc:
                message = str(exc)
                assert "\n" not in message, (line, message)
                # a reading command names the address and the command that creates a store
                # (or, needing an agent, says there is none yet)
                assert ("no agentnb store at" in message and str(folder / "x.duckdb") in message
                        and "%agent init" in message) or "no current agent" in message, (
                            line, message)
            else:
                assert line == "tools", (line, result)  # the notebook's own tools: no store
            assert not (tmp_path / "no").exists(), line
        status = str(shell.run_line_magic("agent", ""))
        assert "not created yet" in status and "%agent create NAME" in status
        assert not (tmp_path / "no").exists()
        # the first command that writes creates the store, and reading works from then on
        shell.run_line_magic("agent", "create calc --model offline")
        assert (folder / "x.duckdb").exists()
        assert "calc" in str(shell.run_line_magic("agent", "list"))
        assert "calc" in str(shell.run_line_magic("agent", ""))
    finally:
        shell.extension_manager.unload_extension("agentnb")


def test_a_first_chat_cell_creates_the_store(monkeypatch, tmp_path):
    # the quickstart's path on a fresh machine: nothing exists, %%chat with a default agent
    path = tmp_path / "fresh" / "x.duckdb"
    monkeypatch.setenv("AGENTNB_DATABASE_URL", f"duckdb:///{path}")
    shell = _notebook_shell(monkeypatch)
    try:
        from IPython.core.error import UsageError

        with pytest.raises(UsageError, match="no current agent"):
            shell.run_cell_magic("chat", "", "hello")
        shell.run_line_magic("agent", "create helper --model offline")
        shell.run_cell_magic("chat", "--no-stream", "hello")
        assert shell.user_ns["_"].text and path.exists()  # the Reply (text mode: no Out[n])
        assert "helper" in str(shell.run_line_magic("agent", "sessions"))
    finally:
        shell.extension_manager.unload_extension("agentnb")


def test_the_default_store_is_not_created_by_reading(capsys, isolated_home):
    code, out, err = _run(capsys, "agents", "list")
    _one_error_line(code, out, err, "no agentnb store at", str(isolated_home / "agentnb.duckdb"))
    assert list(isolated_home.iterdir()) == []


@pytest.mark.parametrize("argv", [["init"], ["agents", "create", "calc"], ["db", "upgrade"],
                                  ["chat", "calc", "hello"]])
def test_writing_commands_create_the_store(capsys, tmp_path, argv):
    url = f"duckdb:///{tmp_path}/new/dir/x.duckdb"
    if argv[0] == "chat":
        assert _run(capsys, "--db", url, "agents", "create", "calc")[0] == 0
        shutil.rmtree(tmp_path / "new")
        code, out, err = _run(capsys, "--db", url, *argv)
        assert code == 2 and "no agent named 'calc'" in err  # a new, empty store
    else:
        code, out, err = _run(capsys, "--db", url, *argv)
        assert code == 0, err
    assert (tmp_path / "new" / "dir" / "x.duckdb").exists()
    assert _run(capsys, "--db", url, "agents", "list")[0] == 0


def test_python_api_create_false(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no agentnb store"):
        agentnb.connect(f"duckdb:///{tmp_path}/missing/x.duckdb", create=False)
    assert not (tmp_path / "missing").exists()
    store = agentnb.connect(f"duckdb:///{tmp_path}/made/x.duckdb")  # the default creates
    store.create_agent("calc")
    store.close()
    again = agentnb.connect(f"duckdb:///{tmp_path}/made/x.duckdb", create=False)
    assert [a.name for a in again.agents()] == ["calc"]
    again.close()


# -- item 5: damaged and unreachable stores ----------------------------------------------


@pytest.fixture(scope="module")
def good_store_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good.duckdb"
    store = agentnb.connect(f"duckdb:///{path}")
    store.create_agent("calc").chat("hello")
    store.close()
    return path.read_bytes()


def _damaged(kind, good):
    return {
        "random": os.urandom(64 * 1024),
        # the three 4 KiB headers and one block: the first read of the catalog runs past the
        # end (a cut at a third of the file could leave every used block in place)
        "truncated": good[: 4 * 4096],
        "truncated-header": good[:100],
        "zero-bytes": b"",
    }[kind]


DAMAGE = ["random", "truncated", "truncated-header", "zero-bytes"]


@pytest.mark.parametrize("argv", [["agents", "list"], ["agents", "create", "x"], ["init"]])
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_duckdb_file_is_one_line_and_untouched(capsys, tmp_path, good_store_bytes,
                                                         damage, argv):
    path = tmp_path / "store.duckdb"
    data = _damaged(damage, good_store_bytes)
    path.write_bytes(data)
    code, out, err = _run(capsys, "--db", f"duckdb:///{path}", *argv)
    _one_error_line(code, out, err, str(path), "damaged", "move it aside")
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".waiters")) == \
        ["store.duckdb"]


def test_a_damaged_sqlite_file_is_one_line_and_untouched(capsys, tmp_path):
    path = tmp_path / "store.db"
    data = os.urandom(8192)
    path.write_bytes(data)
    code, out, err = _run(capsys, "--db", f"sqlite:///{path}", "agents", "list")
    _one_error_line(code, out, err, str(path), "damaged")
    assert path.read_bytes() == data


def test_a_folder_where_the_file_should_be(capsys, tmp_path):
    (tmp_path / "store.duckdb").mkdir()
    code, out, err = _run(capsys, "--db", f"duckdb:///{tmp_path}/store.duckdb", "init")
    _one_error_line(code, out, err, str(tmp_path / "store.duckdb"), "folder")


def test_an_uncreatable_home(capsys, monkeypatch):
    monkeypatch.setenv("AGENTNB_HOME", "/proc/agentnb-cannot-exist")
    code, out, err = _run(capsys, "init")
    _one_error_line(code, out, err, "/proc/agentnb-cannot-exist", "AGENTNB_HOME")
    with pytest.raises(StoreUnavailableError, match="AGENTNB_HOME"):
        agentnb.connect().agents()


@pytest.mark.parametrize("damage", ["random", "zero-bytes"])
def test_agent_magic_says_one_line(tmp_path, monkeypatch, good_store_bytes, damage):
    from IPython.core.error import UsageError
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    path = tmp_path / "store.duckdb"
    data = _damaged(damage, good_store_bytes)
    path.write_bytes(data)
    monkeypatch.setenv("AGENTNB_DATABASE_URL", f"duckdb:///{path}")
    monkeypatch.setattr(HistoryManager, "enabled", False)
    shell = InteractiveShell()
    shell.extension_manager.load_extension("agentnb")
    try:
        for line in ("agents", "create calc", "sql select 1", "sessions"):
            with pytest.raises(UsageError) as info:
                shell.run_line_magic("agent", line)
            message = str(info.value)
            assert "\n" not in message and str(path) in message and "damaged" in message
        assert path.read_bytes() == data
    finally:
        shell.extension_manager.unload_extension("agentnb")


def test_an_unreachable_server_is_one_line(capsys):
    pytest.importorskip("psycopg")
    code, out, err = _run(capsys, "--db", "postgresql+psycopg://u@127.0.0.1:1/db?password=S3CRET",
                          "agents", "list")
    line = _one_error_line(code, out, err, "the store", "127.0.0.1:1")
    assert "S3CRET" not in line


# -- as another user: an unreadable file, a read-only home (root ignores permissions) -----


def _as_nobody(argv, env):
    """Run the CLI as an ordinary user (nobody when the tests run as root)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run(prefix + [sys.executable, "-m", "agentnb.cli", *argv],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def open_tmp(tmp_path):
    tmp_path.chmod(0o777)
    for parent in tmp_path.parents:  # let the other user reach it
        if str(parent).startswith("/tmp/") and parent != parent.parent:
            parent.chmod(parent.stat().st_mode | 0o755)
    return tmp_path


def _cli_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTNB_")}
    env.update(AGENTNB_HOME=str(home), HOME=str(home))
    return env


def test_an_unreadable_store_file(open_tmp, good_store_bytes):
    home = open_tmp / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    path = home / "agentnb.duckdb"
    path.write_bytes(good_store_bytes)
    path.chmod(0o000)
    proc = _as_nobody(["agents", "list"], _cli_env(home))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "permission denied" in lines[0], proc.stderr
    assert path.read_bytes() == good_store_bytes


def test_a_read_only_home(open_tmp):
    home = open_tmp / "home"
    home.mkdir()
    home.chmod(0o555)
    try:
        proc = _as_nobody(["init"], _cli_env(home))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and str(home) in lines[0] and "Traceback" not in proc.stderr, \
            proc.stderr
        assert list(home.iterdir()) == []
    finally:
        home.chmod(0o755)


def test_connect_to_a_good_store_still_works(tmp_path, good_store_bytes):
    path = tmp_path / "copy.duckdb"
    path.write_bytes(good_store_bytes)
    store = agentnb.connect(f"duckdb:///{path}", create=False)
    assert [a.name for a in store.agents()] == ["calc"]
    store.close()
    con = duckdb.connect(str(path))
    assert con.execute("select count(*) from messages").fetchone()[0] == 2
    con.close()
