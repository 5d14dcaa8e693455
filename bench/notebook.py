"""Notebook benchmark: what ``%load_ext agentnb`` and ``%%chat`` cost in a real kernel.

Run::

    .venv/bin/python bench/notebook.py                  # full sizes (about 2 minutes on 2 cores)
    .venv/bin/python bench/notebook.py --quick          # smoke run, 15-30 s
    .venv/bin/python bench/notebook.py --jupyter-ai-python /tmp/jaivenv/bin/python

Prints a table and writes ``bench/results/notebook.json``. Every kernel is a
real ipykernel started with jupyter_client's ``KernelManager`` from a
kernelspec written into a temp dir (argv: the given interpreter ``-m
ipykernel_launcher``), with ``AGENTNB_HOME``, ``IPYTHONDIR`` and the Jupyter
config/data/runtime dirs pointing into that temp dir: no profile or
startup file of the machine runs, and ``~/.agentnb`` is never touched.
Client-side times are taken when the message is read from its zmq socket
(iopub and shell are polled together), from just before the execute request
is sent.

Figures
-------

1. ``%load_ext``: in ``--kernels`` fresh kernels per extension, the first
   cell ``%load_ext agentnb`` timed by the client (request to
   ``execute_reply``), and in as many other fresh kernels the same load
   timed inside the kernel with ``time.perf_counter`` around
   ``get_ipython().run_line_magic('load_ext', 'agentnb')``. Beside it,
   ``jupyter_ai_magics`` measured the same way, in the same run
   (interleaved), with the interpreter of ``--jupyter-ai-python`` (a venv of
   its own: jupyter-ai-magics pins other langchain versions, so it never goes
   into the project's venv). Also: an empty cell right after (the request's
   round trip), and which heavy modules are in ``sys.modules`` after the load.
2. ``%%chat`` overhead: a kernel with agentnb loaded and an agent on the
   offline model; a short answer ("... in 20 words": 20 tokens), one warm-up
   turn, then ``--turns`` turns: time to the first ``display_data`` of the
   cell and to ``execute_reply``; beside it the same turn through the Python
   API (``_r = agent.chat(...)``, an Agent of the magic's own store, its own
   session) and an empty cell, interleaved (the order rotates each round).
   In-kernel times come from ``pre_run_cell`` / ``post_run_cell`` hooks.
3. rendering throughput: (a) in this process, ``RichView`` with a
   ``LiveTurn`` (``stream_rate`` 20/s, the real clock) and a capturing display
   publisher, fed ``--tokens`` Token events of one word as fast as possible:
   tokens/s, display updates/s, bytes of the final HTML; the same at a steady
   2,000 tokens/s (time per update, share of the time spent in the view);
   and how the cost per token grows with the answer's length. (b) in a
   kernel: ``%%chat --new`` asking the offline model for "a story in
   <tokens> words": tokens/s into the cell, ``update_display_data``
   messages/s on iopub, the bytes they carry; beside it the same turn through
   ``agent.chat``.

No figure is asserted: this prints and records, it only fails when a
kernel does (an error reply, a wrong answer, a timeout).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import queue
import shutil
import re
import statistics
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: must NOT be in sys.modules after ``%load_ext agentnb``
HEAVY = ("langchain_core", "pandas", "duckdb", "sqlalchemy", "ipywidgets")
#: also reported (context: what a load pulls in)
ALSO = ("langchain", "langchain_community", "pydantic", "numpy", "markdown_it", "openai",
        "agentnb.api", "agentnb.store")


# -- measuring ------------------------------------------------------------------
def stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    if not s:
        return {"n": 0}
    return {
        "n": len(s),
        "median_ms": round(statistics.median(s), 3),
        "p95_ms": round(s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))], 3),
        "min_ms": round(s[0], 3),
        "max_ms": round(s[-1], 3),
    }


def loadavg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


# -- a real kernel ----------------------------------------------------------------
class Kernel:
    """An ipykernel of ``python`` in ``work``, with a blocking client and timed executes."""

    def __init__(self, python: str, work: Path, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        name = "bench-" + uuid.uuid4().hex[:8]
        spec_dir = work / "kernels" / name
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": name, "language": "python"}))
        ksm = KernelSpecManager(kernel_dirs=[str(work / "kernels")], ensure_native_kernel=False)
        self.km = KernelManager(kernel_name=name, kernel_spec_manager=ksm,
                                connection_file=str(work / "runtime" / f"{name}.json"))
        t0 = time.perf_counter()
        self.log = open(work / "runtime" / f"{name}.log", "wb")  # the kernel's own stderr
        self.km.start_kernel(env=env, cwd=str(work), stdout=self.log, stderr=self.log)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)
        self.start_ms = (time.perf_counter() - t0) * 1000
        import zmq

        self.poller = zmq.Poller()
        self.iopub = self.kc.iopub_channel
        self.shell = self.kc.shell_channel
        self.poller.register(self.iopub.socket, zmq.POLLIN)
        self.poller.register(self.shell.socket, zmq.POLLIN)
        self._drain()

    def _drain(self) -> None:
        time.sleep(0.05)
        for ch in (self.iopub, self.shell):
            while True:
                try:
                    ch.get_msg(timeout=0)
                except queue.Empty:
                    break

    def run(self, code: str, *, user_expressions: dict[str, str] | None = None,
            timeout: float = 300, check: bool = True) -> dict[str, Any]:
        """Execute ``code``; timings (ms from the request) and what came back on iopub."""
        out: dict[str, Any] = {"first_display_ms": None, "displays": 0, "updates": 0,
                               "update_times": [], "kernel_times": [], "display_bytes": 0,
                               "last_data": None,
                               "stdout": "", "stderr": "", "error": None}
        t0 = time.perf_counter()
        msg_id = self.kc.execute(code, user_expressions=user_expressions or {})
        reply = None
        idle = False
        deadline = t0 + timeout
        while reply is None or not idle:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"kernel did not finish {code[:60]!r} in {timeout} s")
            ready = dict(self.poller.poll(min(left, 5) * 1000))
            if self.iopub.socket in ready:
                while True:
                    try:
                        msg = self.iopub.get_msg(timeout=0)
                    except queue.Empty:
                        break
                    now = (time.perf_counter() - t0) * 1000
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    kind, content = msg["msg_type"], msg["content"]
                    if kind in ("display_data", "update_display_data"):
                        data = content.get("data", {})
                        out["display_bytes"] += sum(len(v) for v in data.values()
                                                    if isinstance(v, str))
                        out["last_data"] = data
                        out.setdefault("outputs", []).append(
                            (now, str(data.get("text/plain", ""))[:400]))
                        out["kernel_times"].append(msg["header"]["date"].timestamp() * 1000)
                        if kind == "display_data":
                            out["displays"] += 1
                            if out["first_display_ms"] is None:
                                out["first_display_ms"] = now
                        else:
                            out["updates"] += 1
                            out["update_times"].append(now)
                    elif kind == "stream":
                        out[content["name"]] += content["text"]
                    elif kind == "error":
                        out["error"] = f"{content['ename']}: {content['evalue']}"
                    elif kind == "status" and content["execution_state"] == "idle":
                        idle = True
            if self.shell.socket in ready:
                while True:
                    try:
                        msg = self.shell.get_msg(timeout=0)
                    except queue.Empty:
                        break
                    if msg["parent_header"].get("msg_id") == msg_id:
                        out["reply_ms"] = (time.perf_counter() - t0) * 1000
                        reply = msg["content"]
        out["status"] = reply["status"]
        out["user_expressions"] = {
            k: (ast.literal_eval(v["data"]["text/plain"]) if v.get("status") == "ok"
                else f"error: {v.get('ename')}: {v.get('evalue')}")
            for k, v in reply.get("user_expressions", {}).items()
        }
        if check and (reply["status"] != "ok" or out["error"]):
            raise RuntimeError(f"cell failed: {code[:80]!r}: {out['error'] or reply}\n"
                               f"{out['stderr'][-2000:]}")
        return out

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)
            self.log.close()


def kernel_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTNB_", "JUPYTER_", "IPYTHON", "PYTHONPATH", "VIRTUAL_ENV"))}
    for sub in ("home", "ipython", "jupyter-config", "jupyter-data", "runtime"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    env.update({
        "AGENTNB_HOME": str(work / "home"),
        "IPYTHONDIR": str(work / "ipython"),
        "JUPYTER_CONFIG_DIR": str(work / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(work / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    if os.environ.get("AGENTNB_BENCH_PYTHONPATH"):  # A/B runs against another checkout
        env["PYTHONPATH"] = os.environ["AGENTNB_BENCH_PYTHONPATH"]
    return env


def pyexpr_list(names: tuple[str, ...]) -> str:
    return (f"sorted(m for m in {list(names)!r} if m in __import__('sys').modules)")


# -- 1. %load_ext in fresh kernels -------------------------------------------------
INSIDE = textwrap.dedent("""\
    import sys as __s, time as __t
    __m0 = set(__s.modules)
    __n0 = len(__m0)
    __t0 = __t.perf_counter()
    get_ipython().run_line_magic('load_ext', {ext!r})
    __load_ms = (__t.perf_counter() - __t0) * 1000
    __new_modules = len(__s.modules) - __n0
    __new_names = sorted(set(__s.modules) - __m0) if __new_modules <= 40 else []
""")


def load_once(python: str, ext: str, work: Path, env: dict[str, str], how: str) -> dict:
    k = Kernel(python, work, env)
    try:
        row: dict[str, Any] = {"kernel_start_ms": k.start_ms}
        if how == "client":
            r = k.run(f"%load_ext {ext}")
            row["client_ms"] = r["reply_ms"]
            row["load_stderr"] = r["stderr"][-500:]
            row["empty_cell_ms"] = k.run("pass")["reply_ms"]
            ue = k.run("pass", user_expressions={
                "heavy": pyexpr_list(HEAVY), "also": pyexpr_list(ALSO),
                "modules": "len(__import__('sys').modules)",
                "magics": "sorted(get_ipython().magics_manager.magics['cell'])",
            })["user_expressions"]
            row.update(ue)
        else:
            r = k.run(INSIDE.format(ext=ext), user_expressions={
                "ms": "__load_ms", "new": "__new_modules", "names": "__new_names"})
            row["inside_ms"] = r["user_expressions"]["ms"]
            row["new_modules"] = r["user_expressions"]["new"]
            row["new_module_names"] = r["user_expressions"]["names"]
        return row
    finally:
        k.close()


def bench_load(work: Path, kernels: int, jai_python: str | None) -> dict:
    env = kernel_env(work)
    targets = [("agentnb", sys.executable)]
    if jai_python:
        targets.append(("jupyter_ai_magics", jai_python))
    rows: dict[str, list[dict]] = {ext: [] for ext, _ in targets}
    for ext, py in targets:  # warm-up (file cache, .pyc): not counted
        load_once(py, ext, work, env, "client")
    for i in range(kernels):
        order = targets if i % 2 == 0 else targets[::-1]
        for ext, py in order:
            print(f"    kernel {i + 1}/{kernels} {ext} ...   ", end="\r", flush=True)
            rows[ext].append(load_once(py, ext, work, env, "client"))
            rows[ext].append(load_once(py, ext, work, env, "inside"))
    out: dict[str, Any] = {}
    for ext, py in targets:
        client = [r for r in rows[ext] if "client_ms" in r]
        inside = [r for r in rows[ext] if "inside_ms" in r]
        heavy = sorted({m for r in client for m in r["heavy"]})
        out[ext] = {
            "python": py,
            "client": stats([r["client_ms"] for r in client]),
            "inside": stats([r["inside_ms"] for r in inside]),
            "empty_cell_after": stats([r["empty_cell_ms"] for r in client]),
            "kernel_start": stats([r["kernel_start_ms"] for r in rows[ext]]),
            "new_modules": statistics.median([r["new_modules"] for r in inside]),
            "new_module_names": inside[-1]["new_module_names"],
            "modules_after": statistics.median([r["modules"] for r in client]),
            "heavy_loaded": heavy,
            "also_loaded": sorted({m for r in client for m in r["also"]}),
            "cell_magics": client[-1]["magics"],
            "stderr_sample": client[-1]["load_stderr"],
        }
    if not jai_python:
        out["jupyter_ai_magics"] = {"skipped": "no --jupyter-ai-python given"}
    return out


# -- 2 and 3b. %%chat in a kernel -------------------------------------------------
SETUP = textwrap.dedent("""\
    import time as __t
    __bench = {"t0": None, "last": None}
    def __pre(*a):
        __bench["t0"] = __t.perf_counter()
    def __post(*a):
        if __bench["t0"] is not None:
            __bench["last"] = (__t.perf_counter() - __bench["t0"]) * 1000
    get_ipython().events.register("pre_run_cell", __pre)
    get_ipython().events.register("post_run_cell", __post)
    from agentnb.notebook.extension import get_magics
    __nb = get_magics()
    __api = __nb.store.agent("bench")
    __api.new_session(title="api")
""")
LAST = {"inside": "__bench['last']"}
#: the engine alone (agent.stream, nothing drawn): when its events arrive
ENGINE = textwrap.dedent("""\
    import gc as __gc
    __api.new_session()
    __g2 = [0]
    def __gccb(phase, info):
        if phase == "start" and info["generation"] == 2:
            __g2[0] += 1
    __gc.callbacks.append(__gccb)
    __ts, __kinds = [], []
    __e0 = __t.perf_counter()
    try:
        for __ev in __api.stream({msg!r}):
            __ts.append((__t.perf_counter() - __e0) * 1000)
            __kinds.append(type(__ev).__name__)
    finally:
        __gc.callbacks.remove(__gccb)
    __tok = [t for t, k in zip(__ts, __kinds) if k == "Token"]
    __engine = {{"first_token_ms": round(__tok[0], 1), "total_ms": round(__ts[-1], 1),
                "max_token_gap_ms": round(max(b - a for a, b in zip(__tok, __tok[1:])), 1),
                "gen2_collections": __g2[0]}}
""")


def chat_cell(message: str, line: str = "") -> str:
    return f"%%chat {line}\n{message}"


def api_cell(message: str) -> str:
    return f"_r = __api.chat({message!r})\nassert _r.status == 'complete', _r.error"


def bench_chat(work: Path, turns: int, long_words: int, long_turns: int) -> dict:
    env = kernel_env(work)
    k = Kernel(sys.executable, work, env)
    try:
        k.run("%load_ext agentnb")
        k.run("%agent create bench")
        k.run(SETUP)
        short = "Tell me a story in 20 words"
        kinds = {
            "chat": lambda: k.run(chat_cell(short), user_expressions=LAST),
            "api": lambda: k.run(api_cell(short), user_expressions=LAST),
            "empty": lambda: k.run("pass", user_expressions=LAST),
        }
        for f in kinds.values():  # warm-up
            f()
        got: dict[str, list[dict]] = {name: [] for name in kinds}
        names = list(kinds)
        for i in range(turns):
            print(f"    short turn {i + 1}/{turns} ...", end="\r", flush=True)
            order = names[i % 3:] + names[: i % 3]
            for name in order:
                got[name].append(kinds[name]())
        for r in got["chat"]:
            assert r["displays"] == 1 and r["last_data"], r
            assert 'data-status="complete"' in r["last_data"]["text/html"]
        short_out = {
            "message": short,
            "chat_first_display": stats([r["first_display_ms"] for r in got["chat"]]),
            "chat_reply": stats([r["reply_ms"] for r in got["chat"]]),
            "chat_inside": stats([r["user_expressions"]["inside"] for r in got["chat"]]),
            "chat_updates_per_turn": statistics.median(r["updates"] for r in got["chat"]),
            "chat_bytes_per_turn": statistics.median(r["display_bytes"] for r in got["chat"]),
            "api_reply": stats([r["reply_ms"] for r in got["api"]]),
            "api_inside": stats([r["user_expressions"]["inside"] for r in got["api"]]),
            "empty_reply": stats([r["reply_ms"] for r in got["empty"]]),
        }
        short_out["magic_overhead_median_ms"] = round(
            short_out["chat_reply"]["median_ms"] - short_out["api_reply"]["median_ms"], 2)
        short_out["magic_overhead_inside_median_ms"] = round(
            short_out["chat_inside"]["median_ms"] - short_out["api_inside"]["median_ms"], 2)

        # 3b: a long answer into the cell, and the same through the API.
        long_msg = f"Tell me a story in {long_words} words"
        last_word = long_msg  # filled below
        runs = []
        api_runs = []
        engine_runs = []
        k.run(chat_cell("Tell me a story in 200 words", "--new"))  # warm-up of the path
        for i in range(long_turns):
            print(f"    long answer {i + 1}/{long_turns} ...", end="\r", flush=True)
            r = k.run(chat_cell(long_msg, "--new"), user_expressions={
                **LAST, "words": "len(_.text.split())", "last": "_.text.split()[-1]",
                "tokens": "_.usage.output_tokens"})
            ue = r["user_expressions"]
            assert ue["words"] == long_words, ue  # the offline model: exactly N words
            last_word = ue["last"]
            assert last_word in r["last_data"]["text/plain"][-200:], "final update lacks the end"
            assert 'data-status="complete"' in r["last_data"]["text/html"]
            t_first = r["first_display_ms"]
            ups = r["update_times"]
            stream_s = (ups[-1] - t_first) / 1000 if ups else float("nan")
            # Kernel-side send times (message headers) of the display and its updates:
            # the gaps between coalesced updates (the final update is not coalesced).
            kt = r["kernel_times"]
            gaps = [b - a for a, b in zip(kt[:-2], kt[1:-1])]
            runs.append({
                "reply_ms": r["reply_ms"], "inside_ms": ue["inside"],
                "first_display_ms": t_first, "updates": r["updates"],
                "tokens": ue["tokens"],
                "tokens_per_s": round(ue["tokens"] / (r["reply_ms"] / 1000), 1),
                "updates_per_s": round((r["updates"] - 1) / stream_s, 2) if ups else None,
                # from the first update (tokens are there) to the last coalesced one
                "kernel_updates_per_s": (round((len(kt) - 3) / ((kt[-2] - kt[1]) / 1000), 2)
                                         if len(kt) > 3 else None),
                "kernel_min_gap_ms": round(min(gaps), 1) if gaps else None,
                "display_mb": round(r["display_bytes"] / 2**20, 2),
                "final_html_bytes": len(r["last_data"]["text/html"].encode()),
                "max_gap_ms": round(max((b - a for a, b in zip([t_first] + ups, ups)),
                                        default=0), 1),
            })
            a = k.run(f"__api.new_session()\n{api_cell(long_msg)}", user_expressions=LAST)
            api_runs.append({"reply_ms": a["reply_ms"], "inside_ms": a["user_expressions"][
                "inside"]})
            e = k.run(ENGINE.format(msg=long_msg), user_expressions={"e": "__engine"})
            engine_runs.append(e["user_expressions"]["e"])
        med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
        long_out = {
            "message": long_msg, "runs": runs, "api_runs": api_runs, "engine_runs": engine_runs,
            "engine_first_token_ms": med(engine_runs, "first_token_ms"),
            "engine_max_token_gap_ms": med(engine_runs, "max_token_gap_ms"),
            "engine_gen2_collections": med(engine_runs, "gen2_collections"),
            "engine_total_ms": med(engine_runs, "total_ms"),
            "chat_reply": stats([r["reply_ms"] for r in runs]),
            "api_reply": stats([r["reply_ms"] for r in api_runs]),
            "tokens_per_s": med(runs, "tokens_per_s"),
            "tokens": med(runs, "tokens"),
            "api_tokens_per_s": round(med(runs, "tokens") / (med(api_runs, "reply_ms") / 1000),
                                      1),
            "updates_per_s": med(runs, "updates_per_s"),
            "kernel_updates_per_s": med(runs, "kernel_updates_per_s"),
            "kernel_min_gap_ms": min(r["kernel_min_gap_ms"] for r in runs),
            "updates": med(runs, "updates"),
            "display_mb": med(runs, "display_mb"),
            "final_html_bytes": med(runs, "final_html_bytes"),
            "max_gap_ms": med(runs, "max_gap_ms"),
        }
        return {"short": short_out, "long": long_out}
    finally:
        k.close()


# -- 4. the quickstart's first %%chat in a fresh kernel ------------------------------
QUICKSTART_CELLS = ("%load_ext agentnb", "%agent create helper --template assistant")
QUICKSTART_CHAT = "%%chat\nHello! What can you do in a notebook?"
_FOOTER_SECONDS = re.compile(r"· ([0-9.]+) s\b")


def first_token_once(work: Path, env: dict[str, str], i: int) -> dict:
    """A fresh kernel (and a fresh AGENTNB_HOME) runs the quickstart up to its first %%chat."""
    home = work / f"home-{i}"
    home.mkdir(parents=True, exist_ok=True)
    k = Kernel(sys.executable, work, {**env, "AGENTNB_HOME": str(home)})
    try:
        row: dict[str, Any] = {}
        for n, cell in enumerate(QUICKSTART_CELLS):
            row[f"cell{n}_ms"] = k.run(cell)["reply_ms"]
        r = k.run(QUICKSTART_CHAT)
        shown = [t for t, text in r.get("outputs", []) if "You said" in text]
        row["first_display_ms"] = r["first_display_ms"]
        row["first_token_ms"] = shown[0] if shown else None
        row["reply_ms"] = r["reply_ms"]
        m = _FOOTER_SECONDS.search(str((r["last_data"] or {}).get("text/plain", "")))
        row["footer_s"] = float(m.group(1)) if m else None
        return row
    finally:
        k.close()


def bench_first_token(work: Path, kernels: int) -> dict:
    env = kernel_env(work)
    first_token_once(work, env, -1)  # warm-up (file cache, .pyc): not counted
    rows = []
    for i in range(kernels):
        print(f"    fresh kernel {i + 1}/{kernels} ...   ", end="\r", flush=True)
        rows.append(first_token_once(work, env, i))
    return {
        "rows": rows,
        "first_token": stats([r["first_token_ms"] for r in rows if r["first_token_ms"]]),
        "first_display": stats([r["first_display_ms"] for r in rows]),
        "reply": stats([r["reply_ms"] for r in rows]),
        "load_ext": stats([r["cell0_ms"] for r in rows]),
        "create": stats([r["cell1_ms"] for r in rows]),
        "footer_s": statistics.median(r["footer_s"] for r in rows if r["footer_s"] is not None)
        if any(r["footer_s"] is not None for r in rows) else None,
    }


# -- 3a. RichView in this process --------------------------------------------------
def _view(shell: Any):
    from agentnb.events import TurnStarted
    from agentnb.notebook.chat import RichView
    from agentnb.notebook.live import LiveTurn

    live = LiveTurn(message="bench")
    view = RichView(live, agent="bench", session=uuid.uuid4(), fmt="markdown", rate=20,
                    shell=shell)
    view.event(TurnStarted(session_id=str(uuid.uuid4()), agent="bench", model="offline"))
    return live, view


def _tokens(n: int) -> list:
    from agentnb.events import Token
    from agentnb.models.offline import _filler

    from agentnb.models._calls import split_tokens

    toks = split_tokens(_filler(n))[:n]  # words and punctuation: ~1 word a token
    assert len(toks) == n
    return [Token(text=t) for t in toks]


def feed_fast(shell: Any, tokens: list) -> dict:
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        live, view = _view(shell)
        t0 = time.perf_counter()
        view.start()
        for tok in tokens:
            view.event(tok)
        t1 = time.perf_counter()
        streamed = view.updates  # the first display and the coalesced updates
        view.finish()
        t2 = time.perf_counter()
    final = cap.outputs[-1].data["text/html"]
    assert len(cap.outputs) == view.updates
    assert tokens[-1].text.strip() in final
    s = t1 - t0
    # At most one update per 1/rate seconds after the first display.
    allowed = 1 + int(s * 20) + 1
    return {"tokens": len(tokens), "seconds": s, "tokens_per_s": len(tokens) / s,
            "updates": view.updates, "updates_while_streaming": streamed,
            "updates_per_s": (streamed - 1) / s, "rate_respected": streamed <= allowed,
            "finish_ms": (t2 - t1) * 1000, "final_html_bytes": len(final.encode()),
            "us_per_token": s / len(tokens) * 1e6}


def feed_paced(shell: Any, tokens: list, rate: float) -> dict:
    """Tokens at a steady ``rate`` a second: time per display update, share spent in the view."""
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        live, view = _view(shell)
        per_update: list[float] = []
        busy = 0.0
        t0 = time.perf_counter()
        view.start()
        for i, tok in enumerate(tokens):
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            before = view.updates
            a = time.perf_counter()
            view.event(tok)
            b = time.perf_counter()
            busy += b - a
            if view.updates != before:
                per_update.append((b - a) * 1000)
        t1 = time.perf_counter()
        streamed = view.updates
        view.finish()
    s = t1 - t0
    sizes = [sum(len(v.encode()) for v in o.data.values()) for o in cap.outputs]
    return {"tokens": len(tokens), "rate": rate, "seconds": round(s, 2),
            "updates": view.updates, "updates_per_s": round((streamed - 1) / s, 2),
            "update_ms": stats(per_update),
            "update_ms_first10": stats(per_update[:10]),
            "update_ms_last10": stats(per_update[-10:]),
            "busy_share": round(busy / s, 4),
            "bytes_published_mb": round(sum(sizes) / 2**20, 2),
            "last_bundle_bytes": sizes[-1]}


def bench_render(tokens_n: int, reps: int, scale: list[int]) -> dict:
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    HistoryManager.enabled = False
    shell = InteractiveShell.instance()
    from agentnb.notebook.markup import render_markdown

    render_markdown("warm *up*")
    tokens = _tokens(tokens_n)
    runs = [feed_fast(shell, tokens) for _ in range(reps)]
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    out: dict[str, Any] = {
        "tokens": tokens_n, "reps": reps,
        "tokens_per_s": round(med("tokens_per_s")),
        "feed_ms": round(med("seconds") * 1000, 1),
        "updates_per_s": round(med("updates_per_s"), 2),
        "updates": med("updates"),
        "updates_while_streaming": med("updates_while_streaming"),
        "rate_respected": all(r["rate_respected"] for r in runs),
        "finish_ms": round(med("finish_ms"), 2),
        "final_html_bytes": int(med("final_html_bytes")),
        "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
                 for r in runs],
    }
    out["paced"] = feed_paced(shell, tokens, rate=2000.0)
    # How the cost of a token grows with the answer (fast feed, best of 3).
    grow = []
    for n in scale:
        toks = _tokens(n)
        best = min((feed_fast(shell, toks) for _ in range(3)), key=lambda r: r["seconds"])
        grow.append({"tokens": n, "us_per_token": round(best["us_per_token"], 2),
                     "seconds": round(best["seconds"], 3), "updates": best["updates"]})
    out["growth"] = grow
    # The same growth for LiveTurn.apply alone (no rendering at all).
    from agentnb.notebook.live import LiveTurn

    apply_only = []
    for n in scale:
        toks = _tokens(n)
        best = float("inf")
        for _ in range(3):
            live = LiveTurn(message="x")
            t0 = time.perf_counter()
            for tok in toks:
                live.apply(tok)
            best = min(best, time.perf_counter() - t0)
        apply_only.append({"tokens": n, "us_per_token": round(best / n * 1e6, 2),
                           "seconds": round(best, 3)})
    out["apply_only"] = apply_only
    InteractiveShell.clear_instance()
    return out


# -- report ------------------------------------------------------------------------
def row(name: str, s: dict | None, note: str = "") -> None:
    if not s or not s.get("n"):
        print(f"  {name:<52}{'-':>5}{'-':>11}{'-':>10}  {note}")
        return
    print(f"  {name:<52}{s['n']:>5}{s['median_ms']:>11.2f}{s['p95_ms']:>10.2f}  {note}")


def report(res: dict) -> None:
    print(f"\n  {'figure':<52}{'n':>5}{'median ms':>11}{'p95 ms':>10}  note")
    print("  " + "-" * 100)
    load = res.get("load", {})
    for ext in ("agentnb", "jupyter_ai_magics"):
        r = load.get(ext)
        if not r:
            continue
        if "skipped" in r:
            row(f"%load_ext {ext}", None, f"SKIPPED: {r['skipped']}")
            continue
        heavy = ", ".join(r["heavy_loaded"]) or "none"
        row(f"%load_ext {ext}, fresh kernel (client)", r["client"],
            f"heavy modules after: {heavy}")
        row(f"%load_ext {ext}, fresh kernel (inside)", r["inside"],
            f"+{r['new_modules']:.0f} modules")
        row(f"  empty cell after it ({ext} kernel)", r["empty_cell_after"])
        row(f"  kernel start ({ext} interpreter)", r["kernel_start"])
    chat = res.get("chat")
    if chat:
        s = chat["short"]
        row("%%chat short answer: first display_data", s["chat_first_display"])
        row("%%chat short answer: execute_reply", s["chat_reply"],
            f"{s['chat_updates_per_turn']:.0f} update(s), {s['chat_bytes_per_turn']:.0f} B")
        row("  same cell, inside the kernel", s["chat_inside"])
        row("agent.chat same turn: execute_reply", s["api_reply"],
            f"magic adds {s['magic_overhead_median_ms']} ms (client), "
            f"{s['magic_overhead_inside_median_ms']} ms (inside)")
        row("  same cell, inside the kernel", s["api_inside"])
        row("empty cell (round trip)", s["empty_reply"])
    first = res.get("first")
    if first:
        row("quickstart, fresh kernel: %load_ext agentnb", first["load_ext"])
        row("  then %agent create helper --template assistant", first["create"])
        row("  then the first %%chat: first token shown", first["first_token"],
            "target <= 300 ms")
        row("  same cell: first display_data", first["first_display"])
        row("  same cell: execute_reply", first["reply"], f"footer says {first['footer_s']} s")
    rend = res.get("render")
    if rend:
        print(f"\n  RichView in process, {rend['tokens']:,} tokens as fast as possible "
              f"(median of {rend['reps']}): {rend['tokens_per_s']:,} tokens/s "
              f"({rend['feed_ms']} ms), "
              f"{rend['updates_per_s']} updates/s ({rend['updates_while_streaming']:.0f} while "
              f"streaming + the final one; within 20/s: {rend['rate_respected']}), final HTML "
              f"{rend['final_html_bytes']:,} B, finish {rend['finish_ms']} ms")
        p = rend["paced"]
        print(f"  RichView at {p['rate']:.0f} tokens/s: {p['updates_per_s']} updates/s, "
              f"update median {p['update_ms']['median_ms']} ms / p95 {p['update_ms']['p95_ms']}"
              f" ms / max {p['update_ms']['max_ms']} ms, {p['busy_share'] * 100:.1f} % of the "
              f"time in the view; first 10 updates {p['update_ms_first10']['median_ms']} ms, "
              f"last 10 {p['update_ms_last10']['median_ms']} ms; {p['bytes_published_mb']} MB "
              f"published, last bundle {p['last_bundle_bytes']:,} B")
        print("  cost per token as the answer grows (us/token, RichView | LiveTurn.apply only): "
              + "; ".join(f"{g['tokens']:,}: {g['us_per_token']} | {a['us_per_token']}"
                          for g, a in zip(rend["growth"], rend["apply_only"])))
    if chat:
        lo = chat["long"]
        print(f"  %%chat in a kernel, {lo['message']!r} (median of {len(lo['runs'])}): "
              f"{lo['tokens_per_s']:,} tokens/s into the cell (agent.chat: "
              f"{lo['api_tokens_per_s']:,} tokens/s), {lo['updates_per_s']} "
              f"update_display_data/s at the client, {lo['kernel_updates_per_s']}/s by the "
              f"kernel's clock (smallest gap {lo['kernel_min_gap_ms']} ms), "
              f"({lo['updates']:.0f} updates, {lo['display_mb']} MB on "
              f"iopub, final HTML {lo['final_html_bytes']:,} B, longest gap "
              f"{lo['max_gap_ms']} ms)")
        print(f"  the engine alone (agent.stream, same message, in the kernel): first token "
              f"{lo['engine_first_token_ms']} ms, longest pause between tokens "
              f"{lo['engine_max_token_gap_ms']} ms, {lo['engine_gen2_collections']} gen-2 GC "
              f"passes, {lo['engine_total_ms']} ms in all")
        row("  %%chat long answer: execute_reply", lo["chat_reply"])
        row("  agent.chat long answer: execute_reply", lo["api_reply"])


# -- main --------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--jupyter-ai-python", metavar="PYTHON",
                    help="interpreter of a venv with jupyter-ai-magics and ipykernel "
                    "(e.g. /tmp/jaivenv/bin/python); without it that row is skipped")
    ap.add_argument("--kernels", type=int, help="fresh kernels per extension and way (10)")
    ap.add_argument("--turns", type=int, help="timed short %%chat turns (30)")
    ap.add_argument("--tokens", type=int, help="tokens of the long answer (10000)")
    ap.add_argument("--long-turns", type=int, help="long %%chat turns in the kernel (3)")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: first,load,chat,render")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "notebook.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    q = args.quick
    args.kernels = args.kernels or (2 if q else 10)
    args.turns = args.turns or (5 if q else 30)
    args.tokens = args.tokens or (1000 if q else 10_000)
    args.long_turns = args.long_turns or (1 if q else 3)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if args.jupyter_ai_python and not Path(args.jupyter_ai_python).exists():
        ap.error(f"--jupyter-ai-python: no such file {args.jupyter_ai_python}")

    work = Path(tempfile.mkdtemp(prefix="agentnb-bench-nb-"))
    env = kernel_env(work)
    for key in ("AGENTNB_HOME", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR"):
        os.environ[key] = env[key]  # this process too (3a's shell, connection files)
    load0 = loadavg()
    print(f"notebook.py: {args.kernels} fresh kernels per extension and way, {args.turns} "
          f"short turns, {args.tokens:,}-token answers; {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average {load0}")
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        if "first" not in skip:
            print("  the quickstart's first %%chat in fresh kernels ...", flush=True)
            results["first"] = bench_first_token(work / "first", args.kernels)
        if "load" not in skip:
            print("  %load_ext in fresh kernels ...", flush=True)
            results["load"] = bench_load(work / "load", args.kernels, args.jupyter_ai_python)
        if "render" not in skip:
            print("  RichView in process ...", flush=True)
            scale = [1000, 2500, 5000, 10000, 20000] if not q else [500, 1000, 2000]
            results["render"] = bench_render(args.tokens, 3 if q else 5, scale)
        if "chat" not in skip:
            print("  %%chat in a kernel ...", flush=True)
            results["chat"] = bench_chat(work / "chat", args.turns, args.tokens,
                                         args.long_turns)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(" " * 60)
    report(results)
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in ("agentnb", "ipykernel", "jupyter_client", "ipython", "markdown-it-py"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    if args.jupyter_ai_python:
        import subprocess

        versions["jupyter-ai-magics (its venv)"] = subprocess.run(
            [args.jupyter_ai_python, "-c", "from importlib.metadata import version as v; "
             "print(v('jupyter-ai-magics'), v('langchain'), v('langchain-core'))"],
            capture_output=True, text=True).stdout.strip()
    doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "loadavg_at_start": load0,
                    "loadavg_at_end": loadavg()},
        "versions": versions,
        "settings": {k: getattr(args, k) for k in ("quick", "kernels", "turns", "tokens",
                                                   "long_turns", "jupyter_ai_python")},
        "results": results,
        "total_s": round(time.perf_counter() - t0, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, default=str))
    print(f"\nwrote {out} ({doc['total_s']} s; load average {doc['machine']['loadavg_at_end']})")


if __name__ == "__main__":
    main()
