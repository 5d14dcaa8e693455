"""pytest settings for the tutorial notebooks run by nbval (``--nbval``).

Every notebook runs in its own kernel with ``AGENTNB_HOME`` pointed at a fresh
temporary directory: the tutorials use the default store, and a test run must
never touch the reader's ``~/.agentnb`` nor see what another notebook created.
nbval starts a notebook's kernel (with ``--nbval-current-env``, from this
process's environment) when the notebook's first cell is set up, so the
variable is set just before that.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_homes: dict[str, str] = {}
_saved: dict[str, str | None] = {}


def _set(name: str, value: str) -> None:
    _saved.setdefault(name, os.environ.get(name))
    os.environ[name] = value


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    notebook = item.parent
    if notebook is None or not str(getattr(notebook, "path", "")).endswith(".ipynb"):
        return
    key = str(notebook.path)
    if key not in _homes:
        _homes[key] = tempfile.mkdtemp(prefix="agentnb-nbval-")
        for name in [n for n in os.environ if n.startswith("AGENTNB_")]:
            _saved.setdefault(name, os.environ.get(name))
            del os.environ[name]
        _set("AGENTNB_HOME", _homes[key])
        # jupysql (05-history-sql) reports usage through ploomber-core unless told not to
        _set("PLOOMBER_STATS_ENABLED", "false")


def pytest_sessionfinish(session: pytest.Session) -> None:
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for home in _homes.values():
        shutil.rmtree(home, ignore_errors=True)
