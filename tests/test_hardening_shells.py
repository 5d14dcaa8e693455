"""Issue 9, item 17: the test run ends when the tests do.

IPython registers an atexit hook per ``InteractiveShell``; each one resets the
shell and runs ``gc.collect()``, which kept pytest alive about a minute after
its summary. ``tests/conftest.py`` tears the shells down at session end; this
runs a small pytest session in a subprocess and checks that no shell's atexit
reset ran (the event, not the time it took).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_shells_made_by_tests_are_torn_down_at_session_end(tmp_path):
    inner = tmp_path / "test_inner.py"
    inner.write_text(
        textwrap.dedent(
            """
            import atexit

            SHELLS = []


            def _report():
                ran = sum(1 for s in SHELLS if getattr(s, "_atexit_once_called", False))
                print(f"ATEXIT-RESETS={ran}", flush=True)


            # registered before any shell: atexit runs it after their hooks
            atexit.register(_report)


            def test_make_shells():
                from IPython.core.history import HistoryManager
                from IPython.core.interactiveshell import InteractiveShell

                HistoryManager.enabled = False
                for _ in range(5):
                    SHELLS.append(InteractiveShell())
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         "-p", "tests.conftest", "-o", "addopts=", "--rootdir", str(tmp_path), str(inner)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout
    assert "ATEXIT-RESETS=0" in proc.stdout, proc.stdout
