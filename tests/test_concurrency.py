"""Several processes (and threads) sharing one DuckDB store.

DuckDB lets one process at a time open a file (STACK.md), so the store holds
the file only while busy, releases it when idle, and waits with bounded
backoff when another process has it. These tests run real processes against
one file: concurrent writers, idle release, the lock timeout, kill -9.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

import agentnb
from agentnb.errors import StoreLockedError
from agentnb.schemas import NewMessage, NewToolCall

ROOT = Path(__file__).resolve().parents[1]

#: Common code of the child processes: ``turn(i)`` builds one turn's messages.
PRELUDE = """
import json, os, sys, time, uuid
import agentnb
from agentnb.schemas import NewMessage, NewToolCall

def turn(tag, i):
    return [
        NewMessage(role="user", content=f"{tag} question {i}"),
        NewMessage(
            role="assistant",
            input_tokens=10,
            output_tokens=5,
            model="offline",
            tool_calls=[NewToolCall(tool_name="add", input_args={"a": i, "b": 1},
                                    output=str(i + 1), status="success")],
        ),
        NewMessage(role="assistant", content=f"{tag} answer {i}", model="offline"),
    ]
"""

#: Writes ``turns`` turns into each of its sessions (round robin), then prints its stats.
WRITER = PRELUDE + """
args = json.loads(sys.argv[1])
store = agentnb.connect(args["url"], home=args["home"], lock_timeout=args.get("lock_timeout", 30))
sessions = [uuid.UUID(s) for s in args["sessions"]]
slowest = 0.0
for i in range(args["turns"]):
    for sid in sessions:
        t0 = time.perf_counter()
        store._repo.append_turn(sid, turn(args["tag"], i))
        slowest = max(slowest, time.perf_counter() - t0)
holder = store._db.holder
print(json.dumps({"retries": holder.lock_retries, "slowest": slowest,
                  "max_wait": getattr(holder, "max_wait", None)}), flush=True)
store.close()
"""

#: Writes one turn, says so, stays idle (holding nothing) until told, writes again.
IDLER = PRELUDE + """
args = json.loads(sys.argv[1])
store = agentnb.connect(args["url"], home=args["home"], idle_release=0.5)
sid = uuid.UUID(args["session"])
store._repo.append_turn(sid, turn("idle", 0))
print("wrote", flush=True)
sys.stdin.readline()
store._repo.append_turn(sid, turn("idle", 1))
print("wrote again", flush=True)
store.close()
"""

#: Holds a raw DuckDB connection (and so the file) for ``seconds``.
HOLDER = """
import json, sys, time, duckdb
args = json.loads(sys.argv[1])
con = duckdb.connect(args["path"])
con.execute("select count(*) from messages").fetchall()
print("held", flush=True)
sys.stdin.readline()  # held until the test says "release" (an event, not a duration)
con.close()
print("released", flush=True)
"""

#: Writes turns forever, reporting each commit; the test kills it with SIGKILL.
ENDLESS = PRELUDE + """
args = json.loads(sys.argv[1])
store = agentnb.connect(args["url"], home=args["home"])
sid = uuid.UUID(args["session"])
i = 0
while True:
    store._repo.append_turn(sid, turn("kill", i))
    i += 1
    print(f"committed {i}", flush=True)
"""


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["AGENTNB_HOME"] = str(home)
    env.pop("AGENTNB_DATABASE_URL", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _spawn(script: str, arg, home: Path, **kwargs) -> subprocess.Popen:
    arg = arg if isinstance(arg, str) else json.dumps(arg)
    return subprocess.Popen(
        [sys.executable, "-c", script, arg],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home),
        cwd=str(home),
        **kwargs,
    )


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@pytest.fixture
def url(store_path: Path) -> str:
    return f"duckdb:///{store_path}"


def _make_sessions(url: str, home: Path, n: int) -> list[str]:
    with agentnb.connect(url, home=home) as store:
        agent = store.create_agent("writer")
        return [str(store._repo.create_session(agent.id).id) for _ in range(n)]


def _check_session(store, session_id, turns: int, tags: set[str] | None = None) -> None:
    """Every turn of a session is there, positions 0..n-1, each assistant call stored."""
    history = store._repo.history(session_id)
    assert [m.position for m in history] == list(range(3 * turns))
    assert [m.role for m in history] == ["user", "assistant", "assistant"] * turns
    calls = [c for m in history for c in m.tool_calls]
    assert len(calls) == turns
    assert all(c.tool_name == "add" and c.status == "success" for c in calls)
    if tags is not None:
        assert {m.content.split()[0] for m in history if m.role == "user"} <= tags


def _table_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path))
    try:
        return {
            t: con.execute(f"select count(*) from {t}").fetchone()[0]
            for t in ("messages", "tool_calls")
        }
    finally:
        con.close()


def _finish(procs: list[subprocess.Popen], timeout: float = 60) -> list[dict]:
    stats = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err
        assert "Traceback" not in err and "Error" not in err, err
        stats.append(json.loads(out.strip().splitlines()[-1]))
    return stats


@pytest.mark.slow
def test_four_processes_write_concurrently(url: str, store_path: Path, tmp_path: Path) -> None:
    turns = 25
    sessions = _make_sessions(url, tmp_path, 4)
    procs = [
        _spawn(WRITER, {"url": url, "home": str(tmp_path), "sessions": [sid],
                        "turns": turns, "tag": f"p{k}"}, tmp_path)
        for k, sid in enumerate(sessions)
    ]
    stats = _finish(procs)
    with agentnb.connect(url, home=tmp_path) as store:
        for k, sid in enumerate(sessions):
            _check_session(store, sid, turns, {f"p{k}"})
    assert _table_counts(store_path) == {"messages": 4 * 3 * turns, "tool_calls": 4 * turns}
    # Fairness: nobody came anywhere near the 30 s lock timeout.
    for s in stats:
        assert s["slowest"] < 10, stats


@pytest.mark.slow
def test_processes_sharing_one_session_get_distinct_positions(
    url: str, store_path: Path, tmp_path: Path
) -> None:
    turns = 10
    sessions = _make_sessions(url, tmp_path, 1)
    procs = [
        _spawn(WRITER, {"url": url, "home": str(tmp_path), "sessions": sessions,
                        "turns": turns, "tag": f"p{k}"}, tmp_path)
        for k in range(3)
    ]
    _finish(procs)
    with agentnb.connect(url, home=tmp_path) as store:
        _check_session(store, sessions[0], 3 * turns, {"p0", "p1", "p2"})
        history = store._repo.history(sessions[0])
    # A turn's three messages are contiguous: no process interleaved inside a turn.
    for start in range(0, len(history), 3):
        tags = {m.content.split()[0] for m in history[start : start + 3] if m.content}
        assert len(tags) == 1


@pytest.mark.slow
def test_idle_store_releases_the_file(url: str, store_path: Path, tmp_path: Path) -> None:
    (sid,) = _make_sessions(url, tmp_path, 1)
    proc = _spawn(IDLER, {"url": url, "home": str(tmp_path), "session": sid}, tmp_path,
                  stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "wrote"
        t0 = time.monotonic()
        while True:  # the idle process must let go within about idle_release
            try:
                con = duckdb.connect(str(store_path))
                break
            except duckdb.IOException as exc:
                assert "lock" in str(exc).lower()
                assert time.monotonic() - t0 < 10, "the idle process kept the store locked"
                time.sleep(0.05)
        try:
            assert con.execute("select count(*) from messages").fetchone()[0] == 3
        finally:
            con.close()
        # ... and the idle process opens it again when it has work.
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "wrote again"
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _table_counts(store_path)["messages"] == 6


@pytest.mark.slow
def test_lock_timeout_raises_then_longer_timeout_waits(
    url: str, store_path: Path, tmp_path: Path
) -> None:
    (sid,) = _make_sessions(url, tmp_path, 1)
    holder = _spawn(HOLDER, {"path": str(store_path)}, tmp_path, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        impatient = agentnb.connect(url, home=tmp_path, lock_timeout=0.5)
        try:
            with pytest.raises(StoreLockedError) as info:
                impatient._repo.history(sid)
        finally:
            impatient.close()
        waited = time.monotonic() - t0
        assert waited >= 0.4  # it waited for its timeout (no upper bound: a busy machine)
        message = str(info.value)
        assert str(store_path) in message and "locked by another process" in message
        assert "AGENTNB_LOCK_TIMEOUT" in message

        patient = agentnb.connect(url, home=tmp_path, lock_timeout=120)
        try:
            result: dict = {}

            def append() -> None:
                result["records"] = patient._repo.append_turn(
                    sid, [NewMessage(role="user", content="hi")])

            writer = threading.Thread(target=append)
            writer.start()
            deadline = time.monotonic() + 60  # safety net: the event is its first retry
            while patient._db.holder.lock_retries == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            holder.stdin.write("release\n")
            holder.stdin.flush()
            writer.join(120)
            records = result["records"]
            assert records[0].position == 0
            assert patient._db.holder.lock_retries > 0
            assert [m.content for m in patient._repo.history(sid)] == ["hi"]
        finally:
            patient.close()
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0 and "released" in out, err
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.slow
def test_kill_9_keeps_committed_turns(url: str, store_path: Path, tmp_path: Path) -> None:
    (sid,) = _make_sessions(url, tmp_path, 1)
    proc = _spawn(ENDLESS, {"url": url, "home": str(tmp_path), "session": sid}, tmp_path)
    committed = 0
    try:
        while committed < 12:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            committed = int(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with agentnb.connect(url, home=tmp_path) as store:
        history = store._repo.history(sid)
        turns = len(history) // 3
        # Every reported commit is there (one more may have committed unreported),
        # and no turn is half written.
        assert committed <= turns <= committed + 1
        _check_session(store, sid, turns)
        # The store is usable after the crash.
        store._repo.append_turn(sid, [NewMessage(role="user", content="after")])
        assert store._repo.history(sid, last=1)[0].position == 3 * turns


def test_threads_share_one_store(url: str, tmp_path: Path) -> None:
    threads_n, turns = 8, 12
    errors: list[BaseException] = []
    with agentnb.connect(url, home=tmp_path) as store:
        agent = store.create_agent("threads")
        sessions = [store._repo.create_session(agent.id).id for _ in range(threads_n)]
        start = threading.Barrier(threads_n)

        def work(k: int) -> None:
            try:
                start.wait()
                for i in range(turns):
                    store._repo.append_turn(
                        sessions[k],
                        [
                            NewMessage(role="user", content=f"t{k} question {i}"),
                            NewMessage(
                                role="assistant",
                                tool_calls=[NewToolCall(tool_name="add", status="success",
                                                        input_args={"a": i})],
                            ),
                            NewMessage(role="assistant", content=f"t{k} answer {i}"),
                        ],
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads_n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        assert not errors, errors
        for k, sid in enumerate(sessions):
            _check_session(store, sid, turns, {f"t{k}"})
        assert store._repo.counts()["messages"] == threads_n * turns * 3


def test_two_stores_in_one_process_do_not_wait_for_each_other(url: str, tmp_path: Path) -> None:
    # The inter-process gate is per process: a second Store on the same file in
    # the same process shares DuckDB's instance and must not queue behind the first.
    first = agentnb.connect(url, home=tmp_path, idle_release=30)
    second = agentnb.connect(url, home=tmp_path, idle_release=30, lock_timeout=2)
    try:
        agent = first.create_agent("same")
        sid = first._repo.create_session(agent.id).id
        first._repo.append_turn(sid, [NewMessage(role="user", content="one")])
        assert first._db.holder.is_open
        with first._db.read():  # first is even inside a unit of work
            second._repo.append_turn(sid, [NewMessage(role="user", content="two")])
        # it never waited (a wait would count retries, or end in StoreLockedError)
        assert second._db.holder.lock_retries == 0
        # The position cache of ``first`` notices the other writer.
        first._repo.append_turn(sid, [NewMessage(role="user", content="three")])
        assert [(m.position, m.content) for m in second._repo.history(sid)] == [
            (0, "one"), (1, "two"), (2, "three")
        ]
        assert [m.content for m in first._repo.history(sid, last=2)] == ["two", "three"]
    finally:
        second.close()
        first.close()


def test_a_new_store_does_not_take_its_own_gate_file_for_a_waiter(url: str, store_path: Path) -> None:
    """Creating the ``.waiters`` file gives it a fresh mtime; that is not another process
    asking for the file (it made a new store hand its file over, and reopen it, for its
    first 0.25 s: every cached record read again). A touch by another process still is."""
    store = agentnb.connect(url, idle_release=600)
    try:
        store.create_agent("calc")
        holder = store._db.holder
        assert holder.is_open
        waiters = Path(str(store_path) + ".waiters")
        assert waiters.exists()
        assert not holder._others_waiting()
        # another process's signal (a touch after ours) is seen: retried in case the
        # machine stalls past the signal's 0.25 s freshness between the two lines
        for _ in range(5):
            now = time.time()
            os.utime(waiters, (now, now))
            if holder._others_waiting():
                break
        else:
            pytest.fail("a waiter's touch was not seen")
    finally:
        store.close()
