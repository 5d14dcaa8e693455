"""MCP benchmark: what tools from MCP servers and ``agentnb mcp serve`` cost.

Run::

    .venv/bin/python bench/mcp_costs.py            # full sizes (200 calls, 50 chats, 5 starts)
    .venv/bin/python bench/mcp_costs.py --quick    # smoke run

Prints a table and writes ``bench/results/mcp.json``. Everything runs in a
temporary ``AGENTNB_HOME`` (removed at the end), against the real demo server
of the tests (``tests/mcp_demo_server.py``, FastMCP over stdio).

Figures, each beside a reference measured in the same run:

1. **start + list tools**: a new stdio server started and its tools listed
   (``McpServer.describe_tools`` on a fresh hub: process start, ``initialize``,
   ``tools/list``, the adapters' conversion), ``--starts`` times; the first
   one in this process also pays the imports of ``mcp`` and
   ``langchain_mcp_adapters`` (shown apart). Reference: a bare process of the
   same interpreter importing the SDK's FastMCP (``python -c "import
   mcp.server.fastmcp"``), i.e. what the server process costs before it
   answers anything.
2. **per call**: ``run_tool_call`` (the runner every tool call goes through:
   argument check, timeout, result as text) of ``demo_multiply(a=6, b=7)``, an
   MCP tool on a held session, against the same function registered as a local
   Python tool; ``--calls`` calls each, interleaved, after 10 warm-up calls;
   median and p95.
3. **chat round trip**: one turn on the offline model (``"hello"``) through
   ``agentnb mcp serve`` (the mcp SDK's stdio client calling the ``chat``
   tool, with the session passed back so both sides grow one session) against
   ``agent.chat`` in this process on another agent; ``--chats`` turns each,
   interleaved, after 3 warm-up turns. The server process holds the store
   while it works, and this process releases it when idle, as a notebook and
   a coding agent sharing one store would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = [sys.executable, str(ROOT / "tests" / "mcp_demo_server.py")]


def stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "median_ms": statistics.median(ordered) * 1000,
            "p95_ms": p95 * 1000, "max_ms": ordered[-1] * 1000}


def bench_start(starts: int) -> dict:
    from agentnb.loopthread import LoopThread
    from agentnb.schemas import McpServerConfig
    from agentnb.tools.mcp import McpHub

    config = McpServerConfig(transport="stdio", command=DEMO[0], args=DEMO[1:])
    reference, first, later = [], None, []
    for i in range(starts + 1):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import mcp.server.fastmcp"], check=True)
        reference.append(time.perf_counter() - t0)
        hub = McpHub(LoopThread("bench-mcp"))
        t0 = time.perf_counter()
        hub.server("demo", config).describe_tools()
        elapsed = time.perf_counter() - t0
        hub.close()
        if i == 0:
            first = elapsed
        else:
            later.append(elapsed)
    return {"start_and_list": stats(later), "first_in_process_ms": first * 1000,
            "reference_bare_process": stats(reference[1:])}


def bench_calls(calls: int) -> dict:
    import agentnb
    from agentnb.tools import run_tool_call

    store = agentnb.connect()
    agent = store.create_agent("bench-calls")
    agent.mcp.add("demo", DEMO)

    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    local = store.tools.register(multiply, name="local_multiply")
    [remote] = [s for s in store.runtime.mcp_tool_specs(agent.refresh().config)
                if s.name == "demo_multiply"]
    args = {"a": 6, "b": 7}

    async def run() -> tuple[list[float], list[float]]:
        mcp_times, local_times = [], []
        for _ in range(10):
            await run_tool_call(remote, args, timeout=60)
            await run_tool_call(local, args, timeout=60)
        for i in range(calls):
            for spec, sink in ((remote, mcp_times), (local, local_times))[:: 1 if i % 2 else -1]:
                t0 = time.perf_counter()
                outcome = await run_tool_call(spec, args, timeout=60)
                sink.append(time.perf_counter() - t0)
                assert outcome.output == "42", outcome
        return mcp_times, local_times

    mcp_times, local_times = asyncio.run(run())
    store.close()
    return {"mcp_tool": stats(mcp_times), "python_tool": stats(local_times)}


def bench_chat(chats: int) -> dict:
    import agentnb
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    store = agentnb.connect()
    store.create_agent("served")
    local = store.create_agent("local")

    async def run() -> tuple[list[float], list[float]]:
        params = StdioServerParameters(command=sys.executable,
                                       args=["-m", "agentnb.cli", "mcp", "serve"],
                                       env={"AGENTNB_HOME": os.environ["AGENTNB_HOME"]})
        served_times, local_times = [], []
        with open(os.devnull, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as client:
                    await client.initialize()
                    session = None

                    async def served() -> None:
                        nonlocal session
                        args = {"agent": "served", "message": "hello"}
                        if session:
                            args["session"] = session
                        result = await client.call_tool("chat", args)
                        assert not result.isError, result.content
                        session = result.structuredContent["session_id"]

                    def in_process() -> None:
                        local.chat("hello")

                    for _ in range(3):
                        await served()
                        in_process()
                    for i in range(chats):
                        order = [("served", served), ("local", in_process)]
                        for name, fn in order[:: 1 if i % 2 else -1]:
                            t0 = time.perf_counter()
                            if name == "served":
                                await fn()
                                served_times.append(time.perf_counter() - t0)
                            else:
                                fn()
                                local_times.append(time.perf_counter() - t0)
        return served_times, local_times

    served_times, local_times = asyncio.run(run())
    store.close()
    return {"mcp_serve_chat": stats(served_times), "agent_chat": stats(local_times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--starts", type=int, default=None)
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--chats", type=int, default=None)
    opts = parser.parse_args()
    starts = opts.starts or (2 if opts.quick else 5)
    calls = opts.calls or (30 if opts.quick else 200)
    chats = opts.chats or (10 if opts.quick else 50)
    home = tempfile.mkdtemp(prefix="agentnb-bench-mcp-")
    os.environ["AGENTNB_HOME"] = home
    try:
        results = {"load_average": os.getloadavg(), "python": sys.version.split()[0]}
        results["start"] = bench_start(starts)
        results["calls"] = bench_calls(calls)
        results["chat"] = bench_chat(chats)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "mcp.json").write_text(json.dumps(results, indent=2))

    s, c, h = results["start"], results["calls"], results["chat"]
    rows = [
        ("start a stdio server + list its tools", s["start_and_list"],
         s["reference_bare_process"], "python -c 'import mcp.server.fastmcp'"),
        ("MCP tool call (run_tool_call)", c["mcp_tool"], c["python_tool"],
         "the same function as a Python tool"),
        ("chat turn via agentnb mcp serve", h["mcp_serve_chat"], h["agent_chat"],
         "agent.chat in process"),
    ]
    print(f"load average {results['load_average'][0]:.1f}; first start in this process "
          f"(with the imports): {s['first_in_process_ms']:.0f} ms")
    print(f"{'figure':40} {'median':>9} {'p95':>9}   {'reference':>9} {'p95':>9}  ratio  reference")
    for name, got, ref, what in rows:
        ratio = got["median_ms"] / ref["median_ms"]
        print(f"{name:40} {got['median_ms']:8.1f}ms {got['p95_ms']:8.1f}ms   "
              f"{ref['median_ms']:8.1f}ms {ref['p95_ms']:8.1f}ms  {ratio:5.2f}  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
