"""HTTP benchmark: ``agentnb serve`` under 1, 8 and 32 concurrent clients, against ``agent.chat``.

Run::

    .venv/bin/python bench/serve.py             # 1, 8, 32 clients x 50 requests (~2-4 min, 2 cores)
    .venv/bin/python bench/serve.py --quick     # 1 and 8 clients x 10 requests (~30 s)

Prints a table and writes ``bench/results/serve.json``.

* The server is a real ``agentnb serve`` subprocess on 127.0.0.1 (uvicorn, one process, its
  access log on, as a user runs it) over a DuckDB store file in a temporary directory, with
  one agent on the built-in ``offline`` model (memory ``full``, no tools).
* Every request is one turn in a new session: ``POST /v1/chat/completions`` with one user
  message ``"Hello number <i>"`` and an agent key, non-streaming (one JSON completion) or
  streaming (``stream: true``, read to ``[DONE]``). Each reply is checked for ``<i>``; a
  non-200 or a wrong reply is an error.
* Clients are ``httpx.AsyncClient`` connections in this process, each sending its requests
  one after the other; C clients run at once. Latency is per request, from send to the
  last byte; requests/s is all requests over the wall time of the run.
* **rows lost**: after the runs, the server is stopped and the store opened: every request
  must have left its session and its 2 messages (user, assistant).
* **in-process reference**: ``agent.chat("Hello number <i>", new_session=True)`` in this
  process on a store file of its own (same agent), as many sequential turns as one client
  sends; run in 5 blocks interleaved with the 1-client HTTP blocks (JSON, streaming), so
  machine load hits both alike. The HTTP overhead per request is the 1-client p50 minus the
  in-process p50. **server CPU ms/req** is the server process's CPU time (``/proc``) over a
  run divided by its requests; "CPU / in-process" divides it by the CPU time of one
  in-process turn (``time.process_time``): a figure a busy machine disturbs far less than
  latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import agentnb  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(url: str, log: Path) -> tuple[subprocess.Popen, str]:
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "agentnb.cli", "serve", "--db", url,
                             "--port", "0"], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text()
        if "agentnb serve: http://" in text:
            base = text.split("agentnb serve: ", 1)[1].split()[0]
            try:
                if httpx.get(base + "/health", timeout=5).status_code == 200:
                    return proc, base
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("agentnb serve did not start:\n" + log.read_text())


async def one_client(client: httpx.AsyncClient, key: str, start: int, n: int, stream: bool,
                     latencies: list[float], errors: list[str]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for i in range(start, start + n):
        body = {"model": "bench", "messages": [{"role": "user", "content": f"Hello number {i}"}]}
        t0 = time.perf_counter()
        try:
            if stream:
                body["stream"] = True
                text = ""
                async with client.stream("POST", "/v1/chat/completions", json=body,
                                         headers=headers) as r:
                    status = r.status_code
                    async for line in r.aiter_lines():
                        if line.startswith("data: ") and line != "data: [DONE]":
                            chunk = json.loads(line[6:])
                            if chunk.get("choices"):
                                text += chunk["choices"][0]["delta"].get("content") or ""
            else:
                r = await client.post("/v1/chat/completions", json=body, headers=headers)
                status = r.status_code
                text = r.json()["choices"][0]["message"]["content"] if status == 200 else r.text
        except Exception as exc:  # counted, never fatal: the run must finish
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append(time.perf_counter() - t0)
        if status != 200 or str(i) not in text:
            errors.append(f"{status}: {text[:100]}")


async def http_run(base: str, key: str, clients: int, requests: int, stream: bool,
                   offset: int, pid: int | None = None) -> dict:
    cpu0 = cpu_seconds(pid) if pid else 0.0
    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*[
            one_client(client, key, offset + c * requests, requests, stream, latencies, errors)
            for c in range(clients)])
        wall = time.perf_counter() - t0
    cpu = (cpu_seconds(pid) - cpu0) if pid else float("nan")
    return summary({"clients": clients, "requests": clients * requests, "stream": stream,
                    "cpu": cpu, "wall": wall, "latencies": latencies, "errors": errors})


def summary(raw: dict) -> dict:
    n = raw["requests"]
    return {**raw, "server_cpu_ms": raw["cpu"] * 1000 / n, "rps": n / raw["wall"],
            "p50_ms": pct(raw["latencies"], 0.5) * 1000,
            "p99_ms": pct(raw["latencies"], 0.99) * 1000}


def merged(parts: list[dict]) -> dict:
    """One row from the interleaved blocks of a 1-client run."""
    first = parts[0]
    return summary({"clients": first["clients"], "stream": first["stream"],
                    "requests": sum(p["requests"] for p in parts),
                    "cpu": sum(p["cpu"] for p in parts), "wall": sum(p["wall"] for p in parts),
                    "latencies": [x for p in parts for x in p["latencies"]],
                    "errors": [e for p in parts for e in p["errors"]]})


class Reference:
    """``agent.chat`` in this process, a new session each turn, on a store file of its own."""

    def __init__(self, url: str) -> None:
        self.store = agentnb.connect(url)
        self.agent = self.store.create_agent("bench", model="offline", exist_ok=True)
        self.agent.chat("warm up", new_session=True)
        self.times: list[float] = []
        self.cpu = 0.0
        self.n = 0

    def run(self, turns: int) -> None:
        cpu0 = time.process_time()
        for i in range(self.n, self.n + turns):
            t0 = time.perf_counter()
            reply = self.agent.chat(f"Hello number {i}", new_session=True)
            self.times.append(time.perf_counter() - t0)
            assert str(i) in reply.text, reply.text
        self.cpu += time.process_time() - cpu0
        self.n += turns

    @property
    def cpu_ms(self) -> float:
        return self.cpu * 1000 / self.n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 and 8 clients x 10 requests")
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.clients = 10, "1,8"
    levels = [int(c) for c in args.clients.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="agentnb-bench-serve-"))
    ref_url = f"duckdb:///{tmp}/ref.duckdb"
    url = f"duckdb:///{tmp}/served.duckdb"

    reference = Reference(ref_url)
    rounds = 5 if args.requests >= 10 else 1
    block = args.requests // rounds

    store = agentnb.connect(url)
    store.create_agent("bench", model="offline")
    key = store.create_key("bench").key
    store.close()
    proc, base = start_server(url, tmp / "server.log")
    rows = []
    sent = 0
    try:
        # warm-up: connections, the model object, the first session
        asyncio.run(http_run(base, key, 1, 3, False, 10**6))
        asyncio.run(http_run(base, key, 1, 3, True, 2 * 10**6))
        sent += 6
        for clients in levels:
            if clients == 1:
                # interleaved with the in-process turns, so machine load hits both alike
                parts: dict[bool, list[dict]] = {False: [], True: []}
                for _ in range(rounds):
                    reference.run(block)
                    for stream in (False, True):
                        part = asyncio.run(http_run(base, key, 1, block, stream, offset=sent,
                                                    pid=proc.pid))
                        sent += part["requests"]
                        parts[stream].append(part)
                level_rows = [merged(parts[False]), merged(parts[True])]
            else:
                level_rows = []
                for stream in (False, True):
                    row = asyncio.run(http_run(base, key, clients, args.requests, stream,
                                               offset=sent, pid=proc.pid))
                    sent += row["requests"]
                    level_rows.append(row)
            for row in level_rows:
                rows.append(row)
                print(f"  {clients:>2} clients {'stream' if row['stream'] else 'json  '}: "
                      f"{row['rps']:7.1f} req/s  p50 {row['p50_ms']:6.1f} ms  "
                      f"p99 {row['p99_ms']:7.1f} ms  server CPU {row['server_cpu_ms']:5.1f} ms/req"
                      f"  errors {len(row['errors'])}", flush=True)
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    if 1 not in levels:
        reference.run(args.requests)
    reference.store.close()

    store = agentnb.connect(url)
    _, [(sessions, messages)] = store.sql_rows(
        "select (select count(*) from sessions), (select count(*) from messages)")
    store.close()
    lost = {"sessions": sent - sessions, "messages": 2 * sent - messages}

    ref_p50 = statistics.median(reference.times) * 1000
    ref_cpu_ms = reference.cpu_ms
    print()
    print(f"in-process agent.chat (new session each turn): p50 {ref_p50:.2f} ms, "
          f"p99 {pct(reference.times, 0.99) * 1000:.2f} ms, CPU {ref_cpu_ms:.1f} ms a turn, "
          f"over {len(reference.times)} turns")
    print()
    print("| clients | mode | requests | req/s | p50 ms | p99 ms | p50 / in-process "
          "| server CPU ms/req | CPU / in-process | errors |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['clients']} | {'stream' if r['stream'] else 'json'} | {r['requests']} | "
              f"{r['rps']:.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
              f"{r['p50_ms'] / ref_p50:.2f} | {r['server_cpu_ms']:.1f} | "
              f"{r['server_cpu_ms'] / ref_cpu_ms:.2f} | {len(r['errors'])} |")
    one = [r for r in rows if r["clients"] == 1]
    for r in one:
        print(f"\nHTTP overhead at p50, 1 client, {'stream' if r['stream'] else 'json'}: "
              f"{r['p50_ms'] - ref_p50:.2f} ms a request")
    print(f"rows lost: {lost['sessions']} sessions, {lost['messages']} messages "
          f"(of {sent} requests); load average {os.getloadavg()[0]:.1f}")
    for r in rows:
        if r["errors"]:
            print("errors:", r["errors"][:3])
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.json").write_text(json.dumps({
        "reference_ms": {"p50": ref_p50, "p99": pct(reference.times, 0.99) * 1000,
                         "cpu": ref_cpu_ms, "n": len(reference.times)},
        "runs": [{k: (len(v) if k == "errors" else v) for k, v in r.items()
                  if k != "latencies"} for r in rows], "rows_lost": lost, "requests_sent": sent,
        "loadavg": os.getloadavg(), "argv": sys.argv[1:],
    }, indent=2))
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if not any(r["errors"] for r in rows) and not any(lost.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
