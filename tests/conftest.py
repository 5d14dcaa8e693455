"""Shared fixtures: every test gets its own AGENTNB_HOME, never ~/.agentnb."""

from __future__ import annotations

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
