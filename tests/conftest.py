"""Shared fixtures: every test gets its own AGENTNB_HOME, never ~/.agentnb."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Point AGENTNB_HOME at a fresh directory and clear other AGENTNB_* settings."""
    import os

    home = tmp_path_factory.mktemp("agentnb-home")
    for name in list(os.environ):
        if name.startswith("AGENTNB_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AGENTNB_HOME", str(home))
    return home


@pytest.fixture
def duckdb_url(tmp_path):
    return f"duckdb:///{tmp_path}/store.duckdb"


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/store.sqlite"


@pytest.fixture(params=["duckdb", "sqlite"])
def store_url(request, tmp_path):
    """A store URL on each dialect the suite covers."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/store.duckdb"
    return f"sqlite:///{tmp_path}/store.sqlite"


@pytest.fixture
def store(store_url):
    """An agentnb Store on each covered dialect, closed afterwards."""
    import agentnb

    s = agentnb.connect(store_url)
    yield s
    s.close()


@pytest.fixture
def duck_store(duckdb_url):
    """An agentnb Store on a DuckDB file."""
    import agentnb

    s = agentnb.connect(duckdb_url)
    yield s
    s.close()


# -- IPython shells made by tests: torn down at session end (issue 9, item 17) ----------


def pytest_sessionfinish(session, exitstatus):
    """Release every InteractiveShell a test made, instead of IPython's atexit hook.

    Each ``InteractiveShell()`` registers ``atexit_operations``, whose reset
    runs a full ``gc.collect()`` per shell: with ~100 shells and pytest's heap
    that kept the process alive about a minute after the summary. Here each
    shell's hook is unregistered and its history closed; one collection follows.
    """
    mod = sys.modules.get("IPython.core.interactiveshell")
    if mod is None:  # no test made a shell
        return
    import atexit
    import gc

    shells = [o for o in gc.get_objects() if isinstance(o, mod.InteractiveShell)]
    for sh in shells:
        atexit.unregister(sh.atexit_operations)
        hm = getattr(sh, "history_manager", None)
        if hm is not None:
            try:
                hm.end_session()
                hm.close()
            except Exception:  # a half-built shell: nothing of ours to keep
                pass
            sh.history_manager = None
        for tmp in list(getattr(sh, "tempfiles", [])):
            tmp.unlink(missing_ok=True)
        sh.user_ns.clear()
    mod.InteractiveShell.clear_instance()
    del shells
    # What dies now (closed event loops of test shells) would have died silently at exit.
    hook, sys.unraisablehook = sys.unraisablehook, lambda _unraisable: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook
