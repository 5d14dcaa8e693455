"""Re-execute the tutorial notebooks in place, so their stored outputs are current.

    .venv/bin/python notebooks/refresh_outputs.py              # every notebook
    .venv/bin/python notebooks/refresh_outputs.py 02-tools     # the ones whose name contains 02-tools

Each notebook runs in a fresh kernel of this environment with ``AGENTNB_HOME``
pointed at its own temporary directory, exactly as the tests run it, so a
refresh never touches your own store (``~/.agentnb``) and every notebook starts
from an empty one. nbval compares these stored outputs on every test run
(ids, times and paths are masked by ``nbval-sanitize.cfg``): refresh after a
change that alters what a cell prints, then review the diff.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

def kernel_env(home: str | os.PathLike[str]) -> dict[str, str]:
    """The environment a tutorial kernel runs with: this one, plus a throwaway ``AGENTNB_HOME``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTNB_")}
    env["AGENTNB_HOME"] = str(home)
    # jupysql (05-history-sql) reports usage through ploomber-core unless told not to.
    env["PLOOMBER_STATS_ENABLED"] = "false"
    return env


def execute(path: Path, home: str | os.PathLike[str], *, timeout: int = 120):
    """Run one notebook top to bottom in a fresh kernel; the executed notebook.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell
    (a cell tagged ``raises-exception`` may fail).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    # env= reaches KernelManager.start_kernel: the kernel's whole environment
    client.execute(env=kernel_env(home))
    return nb


def main(argv: list[str]) -> int:
    import nbformat

    paths = sorted(HERE.glob("[0-9][0-9]-*.ipynb"))
    if argv:
        paths = [p for p in paths if any(a in p.name for a in argv)]
    for path in paths:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="agentnb-tutorial-") as home:
            nb = execute(path, home)
        nbformat.write(nb, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
