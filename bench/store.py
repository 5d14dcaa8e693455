"""Store benchmark: what persisting a turn and loading history cost.

Run::

    .venv/bin/python bench/store.py            # full sizes (about 1-2 minutes)
    .venv/bin/python bench/store.py --quick    # smoke run with small sizes

Prints a table and writes ``bench/results/store.json``. Figures:

* ``turn``: ``Repository.append_turn`` of one turn (user message, assistant
  message with one tool call, final assistant message: 3 message rows + 1
  tool-call row + the session's ``updated_at``), on a held connection, one
  process;
* ``floor``: the same rows inserted in one transaction on a held raw
  ``duckdb`` connection (BEGIN, one multi-row INSERT per table, COMMIT) into
  a second file with the same schema (created by agentnb's migrations). The
  two are measured in alternating blocks so machine noise hits both alike;
* ``last 50`` / ``whole history``: ``Repository.history`` of a session with
  10,000 messages in a store of 1,000,000 messages (bulk-loaded with DuckDB
  SQL into a store created by the migrations);
* ``turn, 3 other writers``: the turn while 3 other processes write turns to
  the same file, with each process's lock retries and longest wait.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

import agentnb  # noqa: E402
from agentnb.schemas import NewMessage, NewToolCall  # noqa: E402


# -- helpers ------------------------------------------------------------------
def stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "n": len(s),
        "median_ms": round(statistics.median(s), 3),
        "p95_ms": round(s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))], 3),
        "max_ms": round(s[-1], 3),
    }


def turn_messages(i: int, tag: str = "bench") -> list[NewMessage]:
    """One turn: question, assistant asking for a tool (with its call), answer."""
    return [
        NewMessage(role="user", content=f"{tag}: what is {i} + 1?"),
        NewMessage(
            role="assistant",
            content="",
            input_tokens=120,
            output_tokens=18,
            model="offline",
            tool_calls=[
                NewToolCall(
                    tool_name="add",
                    input_args={"a": i, "b": 1},
                    output=str(i + 1),
                    status="success",
                    execution_time_ms=0.2,
                )
            ],
        ),
        NewMessage(
            role="assistant",
            content=f"{i} + 1 = {i + 1}",
            input_tokens=150,
            output_tokens=9,
            model="offline",
        ),
    ]


def new_store(path: Path, sessions: int = 1):
    store = agentnb.connect(f"duckdb:///{path}", home=path.parent)
    agent = store.create_agent(f"bench{uuid.uuid4().hex[:6]}")
    ids = [store._repo.create_session(agent.id).id for _ in range(sessions)]
    return store, ids


MESSAGE_COLS = (
    "id, session_id, position, role, content, attrs, input_tokens, output_tokens, "
    "tokens_used, model, status, created_at"
)
CALL_COLS = (
    "id, message_id, tool_name, input_args, output, status, error_message, "
    "execution_time_ms, created_at, updated_at"
)
INSERT_MESSAGES = f"INSERT INTO messages ({MESSAGE_COLS}) VALUES " + ", ".join(
    ["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * 3
)
INSERT_CALL = f"INSERT INTO tool_calls ({CALL_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


class Floor:
    """The same rows as a turn, inserted with plain duckdb on a held connection."""

    def __init__(self, path: Path) -> None:
        with agentnb.connect(f"duckdb:///{path}", home=path.parent) as store:
            store.init()  # the schema comes from agentnb's migrations
        self.con = duckdb.connect(str(path))
        self.session = uuid.uuid4()
        self.pos = 0

    def turn(self, i: int) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        sid, p = self.session, self.pos
        m1, m2, m3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        params = [
            m1, sid, p, "user", f"bench: what is {i} + 1?", "{}", None, None, None, None,
            "complete", now,
            m2, sid, p + 1, "assistant", "", "{}", 120, 18, 138, "offline", "complete", now,
            m3, sid, p + 2, "assistant", f"{i} + 1 = {i + 1}", "{}", 150, 9, 159, "offline",
            "complete", now,
        ]
        call = [uuid.uuid4(), m2, "add", json.dumps({"a": i, "b": 1}), str(i + 1), "success",
                None, 0.2, now, now]
        self.con.execute("BEGIN")
        self.con.execute(INSERT_MESSAGES, params)
        self.con.execute(INSERT_CALL, call)
        self.con.execute("COMMIT")
        self.pos += 3

    def close(self) -> None:
        self.con.close()


# -- 1. one process: append_turn against the raw floor ---------------------------
def bench_turn(work: Path, turns: int) -> dict:
    store, (sid,) = new_store(work / "turn.duckdb")
    floor = Floor(work / "floor.duckdb")
    ours: list[float] = []
    raw: list[float] = []
    block = 50
    i = 0
    for _ in range(10):  # warm up both
        store._repo.append_turn(sid, turn_messages(i))
        floor.turn(i)
        i += 1
    while len(ours) < turns:
        for _ in range(min(block, turns - len(ours))):
            t0 = time.perf_counter()
            store._repo.append_turn(sid, turn_messages(i))
            ours.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            floor.turn(i)
            raw.append((time.perf_counter() - t0) * 1000)
            i += 1
    # A turn after the store went idle: open the file, write, (release later).
    cold: list[float] = []
    for j in range(5):
        store._db.holder.release()
        t0 = time.perf_counter()
        store._repo.append_turn(sid, turn_messages(i + j))
        cold.append((time.perf_counter() - t0) * 1000)
    store.close()
    floor.close()
    out = {"turn": stats(ours), "floor": stats(raw), "turn_after_idle": stats(cold)}
    out["ratio_median"] = round(out["turn"]["median_ms"] / out["floor"]["median_ms"], 2)
    return out


# -- 2. a store of 1M messages -------------------------------------------------
def build_big_store(path: Path, total: int, target: int, others: int) -> uuid.UUID:
    """``total`` messages: ``target`` in one session, the rest spread over ``others``.

    Rows are interleaved in time order (every ``total/target``-th message is
    the target session's), as a store written by many sessions over time.
    """
    with agentnb.connect(f"duckdb:///{path}", home=path.parent) as store:
        agent = store.create_agent("big")
        target_id = store._repo.create_session(agent.id, title="target").id
    every = total // target
    rest = total - target
    per_other = rest // others
    assert target * every == total and per_other * others == rest
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN")
        con.execute(
            "CREATE TEMP TABLE s AS SELECT i, CASE WHEN i = 0 THEN ?::UUID "
            "ELSE gen_random_uuid() END AS id FROM range(?) t(i)",
            [target_id, others + 1],
        )
        con.execute(
            "INSERT INTO sessions SELECT id, ?, NULL, 'bench ' || i, '{}', "
            "TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01' FROM s WHERE i > 0",
            [agent.id],
        )
        con.execute(
            f"""
            INSERT INTO messages ({MESSAGE_COLS})
            SELECT gen_random_uuid(), s.id, g.pos,
              CASE g.pos % 3 WHEN 0 THEN 'user' ELSE 'assistant' END,
              'message ' || g.r || ': lorem ipsum dolor sit amet, consectetur adipiscing '
                || 'elit, sed do eiusmod tempor incididunt ut labore et dolore magna',
              '{{}}',
              CASE WHEN g.pos % 3 = 0 THEN NULL ELSE 120 END,
              CASE WHEN g.pos % 3 = 0 THEN NULL ELSE 18 END,
              CASE WHEN g.pos % 3 = 0 THEN NULL ELSE 138 END,
              CASE WHEN g.pos % 3 = 0 THEN NULL ELSE 'offline' END,
              'complete', TIMESTAMP '2026-01-01' + to_seconds(g.r)
            FROM (
              SELECT r,
                CASE WHEN r % {every} = 0 THEN 0
                     ELSE 1 + (r - r // {every} - 1) % {others} END AS si,
                CASE WHEN r % {every} = 0 THEN r // {every}
                     ELSE (r - r // {every} - 1) // {others} END AS pos
              FROM range({total}) t(r)
            ) g JOIN s ON s.i = g.si
            ORDER BY g.r
            """
        )
        con.execute(
            f"""
            INSERT INTO tool_calls ({CALL_COLS})
            SELECT gen_random_uuid(), id, 'add', '{{"a": 1, "b": 2}}', '3', 'success', NULL,
                   0.2, created_at, created_at
            FROM messages WHERE role = 'assistant' AND position % 3 = 1
            """
        )
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        n = con.execute("SELECT count(*) FROM messages").fetchone()[0]
        k = con.execute(
            "SELECT count(*) FROM messages WHERE session_id = ?", [target_id]
        ).fetchone()[0]
        assert (n, k) == (total, target), (n, k)
    finally:
        con.close()
    return target_id


def bench_history(work: Path, total: int, target: int, others: int, reps: int) -> dict:
    path = work / "big.duckdb"
    t0 = time.perf_counter()
    sid = build_big_store(path, total, target, others)
    build_s = time.perf_counter() - t0
    url = f"duckdb:///{path}"
    out: dict = {"messages": total, "session_messages": target, "build_s": round(build_s, 2)}

    # Cold: a fresh Store (opens the file, checks the schema), then the query.
    cold = []
    for _ in range(3):
        t0 = time.perf_counter()
        store = agentnb.connect(url, home=work)
        got = store._repo.history(sid, last=50)
        cold.append((time.perf_counter() - t0) * 1000)
        store.close()
    assert len(got) == 50 and got[-1].position == target - 1
    store = agentnb.connect(url, home=work)
    store._repo.history(sid, last=50)
    warm = []
    for _ in range(reps):
        t0 = time.perf_counter()
        got = store._repo.history(sid, last=50)
        warm.append((time.perf_counter() - t0) * 1000)
    assert [m.position for m in got] == list(range(target - 50, target))
    assert sum(len(m.tool_calls) for m in got) in (16, 17)
    whole = []
    for _ in range(max(3, reps // 10)):
        t0 = time.perf_counter()
        got = store._repo.history(sid)
        whole.append((time.perf_counter() - t0) * 1000)
    assert len(got) == target
    # A turn appended to the big session of the big store.
    turns = []
    for i in range(max(20, reps)):
        t0 = time.perf_counter()
        store._repo.append_turn(sid, turn_messages(i))
        turns.append((time.perf_counter() - t0) * 1000)
    store.close()
    out.update(
        last50=stats(warm),
        last50_cold=stats(cold),
        whole=stats(whole),
        turn_in_big_session=stats(turns),
    )
    return out


# -- 3. contention ---------------------------------------------------------------
def _writer(url: str, home: str, sid: str, ready, stop, results) -> None:
    store = agentnb.connect(url, home=home)
    session = uuid.UUID(sid)
    times: list[float] = []
    ready.put(os.getpid())
    i = 0
    while not stop.is_set():
        t0 = time.perf_counter()
        store._repo.append_turn(session, turn_messages(i, "other"))
        times.append((time.perf_counter() - t0) * 1000)
        i += 1
    holder = store._db.holder
    results.put(_process_report(f"writer {os.getpid()}", times, holder))
    store.close()


def _process_report(name: str, times: list[float], holder) -> dict:
    return {
        "process": name,
        **stats(times),
        "lock_retries": holder.lock_retries,
        "max_wait_ms": round(getattr(holder, "max_wait", float("nan")) * 1000, 1),
    }


def bench_contention(work: Path, turns: int, others: int = 3) -> dict:
    path = work / "shared.duckdb"
    store, sessions = new_store(path, sessions=others + 1)
    store.close()
    url = f"duckdb:///{path}"
    ctx = mp.get_context("spawn")
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_writer, args=(url, str(work), str(sid), ready, stop, results))
        for sid in sessions[1:]
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=60)
    store = agentnb.connect(url, home=work)
    times = []
    t_all = time.perf_counter()
    for i in range(turns):
        t0 = time.perf_counter()
        store._repo.append_turn(sessions[0], turn_messages(i))
        times.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - t_all
    stop.set()
    reports = [_process_report("measured", times, store._db.holder)]
    store.close()
    reports += [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0, p.exitcode
    with agentnb.connect(url, home=work) as check:
        counts = check._repo.counts()
    total_turns = sum(r["n"] for r in reports)
    assert counts["messages"] == 3 * total_turns and counts["tool_calls"] == total_turns, counts
    return {
        "turn": reports[0],
        "processes": reports,
        "elapsed_s": round(elapsed, 2),
        "turns_all_processes": total_turns,
        "throughput_turns_per_s": round(total_turns / elapsed, 1),
    }


# -- main --------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "store.json"))
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--url", help="a PostgreSQL database (postgresql+psycopg://...): "
                        "its figures next to DuckDB's and SQLite's (issue 12)")
    args = parser.parse_args()
    if args.url:
        main_postgres(args, dict(turns=100, writers=8, wturns=40, cturns=60, total=100_000,
                                 target=2_000, others=98, reps=20, copy_total=20_000)
                      if args.quick else
                      dict(turns=500, writers=8, wturns=150, cturns=300, total=1_000_000,
                           target=10_000, others=990, reps=100, copy_total=100_000))
        return
    if args.quick:
        sizes = dict(turns=100, total=100_000, target=2_000, others=98, reps=20, cturns=60)
    else:
        sizes = dict(turns=500, total=1_000_000, target=10_000, others=990, reps=100, cturns=300)
    work = Path(tempfile.mkdtemp(prefix="agentnb-bench-"))
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "quick": args.quick,
        "sizes": sizes,
    }
    try:
        print("turn persistence, one process ...", flush=True)
        results["one_process"] = bench_turn(work, sizes["turns"])
        print(f"history, {sizes['total']:,} messages ...", flush=True)
        results["history"] = bench_history(
            work, sizes["total"], sizes["target"], sizes["others"], sizes["reps"]
        )
        print("turn persistence with 3 other writers ...", flush=True)
        results["contention"] = bench_contention(work, sizes["cturns"])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(report(results))
    print(f"\nwritten to {out}")


def report(r: dict) -> str:
    one, hist, con = r["one_process"], r["history"], r["contention"]

    def row(name, s, note=""):
        return f"| {name} | {s['n']} | {s['median_ms']:.2f} | {s['p95_ms']:.2f} | {note} |"

    lines = [
        "| figure | n | median ms | p95 ms | note |",
        "|---|---:|---:|---:|---|",
        row("turn (append_turn), one process", one["turn"],
            f"{one['ratio_median']:.2f}x the floor (target <= 2x)"),
        row("floor: same rows, raw duckdb, one transaction", one["floor"], "held connection"),
        row("turn after idle release (opens the file)", one["turn_after_idle"], ""),
        row(f"last 50 of {hist['session_messages']:,} ({hist['messages']:,} in store)",
            hist["last50"], "target < 20 ms"),
        row("last 50, fresh Store (open + schema check + query)", hist["last50_cold"], ""),
        row(f"whole history ({hist['session_messages']:,} messages)", hist["whole"], ""),
        row(f"turn into the {hist['session_messages']:,}-message session", hist["turn_in_big_session"], ""),
        row("turn, 3 other processes writing", con["turn"],
            f"{con['throughput_turns_per_s']} turns/s over all 4"),
        "",
        f"Big store built in {hist['build_s']} s. Load average (1/5/15 min) at start "
        f"{r['machine']['loadavg_at_start']}, at end {r['machine']['loadavg_at_end']} "
        f"on {r['machine']['cpus']} CPUs.",
        "",
        "| process (contention) | turns | median ms | p95 ms | max ms | lock retries | max wait ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in con["processes"]:
        lines.append(
            f"| {p['process']} | {p['n']} | {p['median_ms']:.2f} | {p['p95_ms']:.2f} | "
            f"{p['max_ms']:.1f} | {p['lock_retries']} | {p['max_wait_ms']} |"
        )
    return "\n".join(lines)


# -- PostgreSQL (issue 12): ``--url postgresql+psycopg://...`` ---------------------------------
# The same figures for a server store, each next to its DuckDB (and SQLite) counterpart
# measured in the same run. Everything happens in a fresh schema of the given database
# (dropped at the end), so any database the role may create schemas in will do.
def _pg_schema_url(url: str) -> tuple[str, str]:
    """A fresh schema in the database at ``url``; (URL selecting it, schema name)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from agentnb.store.pool import plain_postgres_url

    url = plain_postgres_url(url)
    name = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"create schema {name}")
    engine.dispose()
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={name}"})
    return scoped.render_as_string(hide_password=False), name


def _pg_drop_schemas(url: str, names: list[str]) -> None:
    import sqlalchemy as sa

    from agentnb.store.pool import plain_postgres_url

    engine = sa.create_engine(plain_postgres_url(url), poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f"drop schema if exists {name} cascade")
    engine.dispose()


def bench_turn_dialects(work: Path, pg_url: str, turns: int) -> dict:
    """append_turn on PostgreSQL, DuckDB and SQLite, in alternating blocks of 50 turns."""
    urls = {"postgresql": pg_url, "duckdb": f"duckdb:///{work}/t.duckdb",
            "sqlite": f"sqlite:///{work}/t.sqlite"}
    stores, sids, times = {}, {}, {}
    for name, url in urls.items():
        store = agentnb.connect(url, home=work)
        agent = store.create_agent("bench")
        stores[name], sids[name], times[name] = store, store._repo.create_session(agent.id).id, []
        for i in range(10):  # warm up
            store._repo.append_turn(sids[name], turn_messages(i))
    i = 0
    while len(times["postgresql"]) < turns:
        for name, store in stores.items():
            for k in range(min(50, turns - len(times[name]))):
                t0 = time.perf_counter()
                store._repo.append_turn(sids[name], turn_messages(i + k))
                times[name].append((time.perf_counter() - t0) * 1000)
        i += 50
    for store in stores.values():
        store.close()
    out = {name: stats(t) for name, t in times.items()}
    out["pg_over_duckdb_median"] = round(out["postgresql"]["median_ms"]
                                         / out["duckdb"]["median_ms"], 2)
    return out


def _pg_writer(url: str, home: str, sid: str, turns: int, ready, go, results) -> None:
    store = agentnb.connect(url, home=home)
    session = uuid.UUID(sid)
    store._repo.append_turn(session, turn_messages(0, "warm"))
    ready.put(os.getpid())
    go.wait()
    times = []
    errors = 0
    for i in range(turns):
        t0 = time.perf_counter()
        try:
            store._repo.append_turn(session, turn_messages(i, "w"))
        except Exception:  # counted, not hidden: the figure says how many
            errors += 1
        times.append((time.perf_counter() - t0) * 1000)
    results.put({"process": f"writer {os.getpid()}", **stats(times), "errors": errors,
                 "done_at": time.perf_counter()})
    store.close()


def bench_pg_writers(work: Path, pg_url: str, writers: int, turns: int) -> dict:
    """``writers`` processes, each appending ``turns`` turns to its own session at once."""
    store = agentnb.connect(pg_url, home=work)
    agent = store.create_agent("writers")
    sessions = [str(store._repo.create_session(agent.id).id) for _ in range(writers)]
    store.close()
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_pg_writer,
                         args=(pg_url, str(work), sid, turns, ready, go, results))
             for sid in sessions]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    t0 = time.perf_counter()
    go.set()
    reports = [results.get(timeout=600) for _ in procs]
    elapsed = max(r.pop("done_at") for r in reports) - t0
    for p in procs:
        p.join(timeout=60)
    with agentnb.connect(pg_url, home=work) as check:
        counts = check.counts()
    total = writers * turns
    assert counts["messages"] == 3 * (total + writers), counts  # + each writer's warm-up turn
    return {"writers": writers, "turns_each": turns, "processes": reports,
            "errors": sum(r["errors"] for r in reports), "elapsed_s": round(elapsed, 2),
            "throughput_turns_per_s": round(total / elapsed, 1)}


def build_big_pg_store(url: str, total: int, target: int, others: int) -> uuid.UUID:
    """What :func:`build_big_store` builds, on PostgreSQL: one INSERT ... SELECT a table."""
    import sqlalchemy as sa

    with agentnb.connect(url) as store:
        agent = store.create_agent("big")
        target_id = store._repo.create_session(agent.id, title="target").id
    every = total // target
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TEMP TABLE s AS SELECT i, CASE WHEN i = 0 THEN %(t)s::uuid "
            "ELSE gen_random_uuid() END AS id FROM generate_series(0, %(n)s) i",
            {"t": str(target_id), "n": others})
        conn.exec_driver_sql(
            "INSERT INTO sessions SELECT id, %(a)s::uuid, NULL, 'bench ' || i, '{}', "
            "TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01' FROM s WHERE i > 0",
            {"a": str(agent.id)})
        conn.exec_driver_sql(f"""
            INSERT INTO messages ({MESSAGE_COLS})
            SELECT gen_random_uuid(), s.id, g.pos,
              CASE mod(g.pos, 3) WHEN 0 THEN 'user' ELSE 'assistant' END,
              'message ' || g.r || ': lorem ipsum dolor sit amet, consectetur adipiscing '
                || 'elit, sed do eiusmod tempor incididunt ut labore et dolore magna',
              '{{}}',
              CASE WHEN mod(g.pos, 3) = 0 THEN NULL ELSE 120 END,
              CASE WHEN mod(g.pos, 3) = 0 THEN NULL ELSE 18 END,
              CASE WHEN mod(g.pos, 3) = 0 THEN NULL ELSE 138 END,
              CASE WHEN mod(g.pos, 3) = 0 THEN NULL ELSE 'offline' END,
              'complete', TIMESTAMP '2026-01-01' + g.r * INTERVAL '1 second'
            FROM (
              SELECT r,
                CASE WHEN mod(r, {every}) = 0 THEN 0
                     ELSE 1 + mod(r - r / {every} - 1, {others}) END AS si,
                CASE WHEN mod(r, {every}) = 0 THEN r / {every}
                     ELSE (r - r / {every} - 1) / {others} END AS pos
              FROM generate_series(0, {total - 1}) r
            ) g JOIN s ON s.i = g.si
            ORDER BY g.r""")
        conn.exec_driver_sql(f"""
            INSERT INTO tool_calls ({CALL_COLS})
            SELECT gen_random_uuid(), id, 'add', '{{"a": 1, "b": 2}}', '3', 'success', NULL,
                   0.2, created_at, created_at
            FROM messages WHERE role = 'assistant' AND mod(position, 3) = 1""")
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        n, k = conn.exec_driver_sql(
            "SELECT count(*), count(*) FILTER (WHERE session_id = %(t)s::uuid) FROM messages",
            {"t": str(target_id)}).one()
    engine.dispose()
    assert (n, k) == (total, target), (n, k)
    return target_id


def bench_pg_history(work: Path, pg_url: str, total: int, target: int, others: int,
                     reps: int) -> dict:
    t0 = time.perf_counter()
    sid = build_big_pg_store(pg_url, total, target, others)
    build_s = time.perf_counter() - t0
    store = agentnb.connect(pg_url, home=work)
    store._repo.history(sid, last=50)
    warm = []
    for _ in range(reps):
        t0 = time.perf_counter()
        got = store._repo.history(sid, last=50)
        warm.append((time.perf_counter() - t0) * 1000)
    assert [m.position for m in got] == list(range(target - 50, target))
    turns = []
    for i in range(max(20, reps)):
        t0 = time.perf_counter()
        store._repo.append_turn(sid, turn_messages(i))
        turns.append((time.perf_counter() - t0) * 1000)
    store.close()
    return {"messages": total, "session_messages": target, "build_s": round(build_s, 2),
            "last50": stats(warm), "turn_in_big_session": stats(turns)}


def bench_copy(work: Path, pg_url: str, total: int, target: int, others: int) -> dict:
    """``db copy`` rows/s: a DuckDB store of ``total`` messages to PostgreSQL and back."""
    path = work / "copy-src.duckdb"
    build_big_store(path, total, target, others)
    src = agentnb.connect(f"duckdb:///{path}", home=work)
    to_pg = src.copy_to(pg_url)
    src.close()
    back = agentnb.connect(f"duckdb:///{work}/copy-back.duckdb", home=work)
    from_pg = back.copy_from(pg_url)
    back.close()
    return {"rows": to_pg.copied,
            "duckdb_to_postgresql": {"seconds": round(to_pg.seconds, 2),
                                     "rows_per_s": round(to_pg.rows_per_second)},
            "postgresql_to_duckdb": {"seconds": round(from_pg.seconds, 2),
                                     "rows_per_s": round(from_pg.rows_per_second)}}


def main_postgres(args, sizes: dict) -> None:
    work = Path(tempfile.mkdtemp(prefix="agentnb-bench-pg-"))
    schemas: list[str] = []

    def fresh() -> str:
        url, name = _pg_schema_url(args.url)
        schemas.append(name)
        return url

    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]},
                     "quick": args.quick, "sizes": sizes}
    try:
        print("turn persistence: PostgreSQL, DuckDB, SQLite ...", flush=True)
        results["turn"] = bench_turn_dialects(work, fresh(), sizes["turns"])
        print(f"{sizes['writers']} processes writing to PostgreSQL ...", flush=True)
        results["pg_writers"] = bench_pg_writers(work, fresh(), sizes["writers"],
                                                 sizes["wturns"])
        print("4 processes writing to one DuckDB file (the reference) ...", flush=True)
        results["duckdb_contention"] = bench_contention(work, sizes["cturns"])
        print(f"history on PostgreSQL, {sizes['total']:,} messages ...", flush=True)
        results["pg_history"] = bench_pg_history(work, fresh(), sizes["total"],
                                                 sizes["target"], sizes["others"],
                                                 sizes["reps"])
        print(f"db copy, {sizes['copy_total']:,} messages ...", flush=True)
        results["copy"] = bench_copy(work, fresh(), sizes["copy_total"], 1_000,
                                     sizes["copy_total"] // 1_000 - 1)
    finally:
        _pg_drop_schemas(args.url, schemas)
        shutil.rmtree(work, ignore_errors=True)
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out if args.out != parser_default_out() else
               ROOT / "bench" / "results" / "store_postgres.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(report_postgres(results))
    print(f"\nwritten to {out}")


def parser_default_out() -> str:
    return str(ROOT / "bench" / "results" / "store.json")


def report_postgres(r: dict) -> str:
    t, w, d, h, c = (r["turn"], r["pg_writers"], r["duckdb_contention"], r["pg_history"],
                     r["copy"])

    def row(name, s, note=""):
        return f"| {name} | {s['n']} | {s['median_ms']:.2f} | {s['p95_ms']:.2f} | {note} |"

    ratio = w["throughput_turns_per_s"] / d["throughput_turns_per_s"]
    return "\n".join([
        "| figure | n | median ms | p95 ms | note |",
        "|---|---:|---:|---:|---|",
        row("turn (append_turn), PostgreSQL", t["postgresql"],
            f"{t['pg_over_duckdb_median']:.2f}x DuckDB's median"),
        row("turn, DuckDB (same run)", t["duckdb"], ""),
        row("turn, SQLite (same run)", t["sqlite"], ""),
        row(f"turn, {w['writers']} processes on PostgreSQL (each)",
            {"n": sum(p["n"] for p in w["processes"]),
             "median_ms": statistics.median(p["median_ms"] for p in w["processes"]),
             "p95_ms": max(p["p95_ms"] for p in w["processes"])},
            f"{w['throughput_turns_per_s']} turns/s over all, {w['errors']} errors; "
            f"{ratio:.2f}x the 4-process DuckDB figure ({d['throughput_turns_per_s']} turns/s)"),
        row(f"last 50 of {h['session_messages']:,} ({h['messages']:,} in store), PostgreSQL",
            h["last50"], f"store built in {h['build_s']} s"),
        row(f"turn into the {h['session_messages']:,}-message session, PostgreSQL",
            h["turn_in_big_session"], ""),
        "",
        f"db copy of {c['rows']:,} rows: DuckDB -> PostgreSQL "
        f"{c['duckdb_to_postgresql']['rows_per_s']:,} rows/s "
        f"({c['duckdb_to_postgresql']['seconds']} s), PostgreSQL -> DuckDB "
        f"{c['postgresql_to_duckdb']['rows_per_s']:,} rows/s "
        f"({c['postgresql_to_duckdb']['seconds']} s).",
        f"Load average at start {r['machine']['loadavg_at_start']}, at end "
        f"{r['machine']['loadavg_at_end']} on {r['machine']['cpus']} CPUs.",
    ])


if __name__ == "__main__":
    main()
