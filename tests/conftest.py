"""Shared fixtures: every test gets its own AGENTNB_HOME, never ~/.agentnb."""

from __future__ import annotations

import signal
import sys

import pytest

# The Ctrl-C tests press it with _thread.interrupt_main(), which does nothing unless Python
# handles SIGINT. A process started as a background job of a non-interactive shell (`cmd &`
# or nohup in a CI script) begins with SIGINT ignored, and Python then installs no handler:
# those tests failed with "DID NOT RAISE KeyboardInterrupt". Give this process (and each
# xdist worker, which imports this file) the handler an interactive start has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(params=["duckdb", "sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A store URL on each dialect the suite covers (PostgreSQL: a fresh schema)."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/store.duckdb"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
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


# -- PostgreSQL (issue 12) ------------------------------------------------------------------
# The server's URL comes from AGENTNB_TEST_POSTGRES_URL (.ci/run exports it), read once here,
# before `isolated_home` clears AGENTNB_* for each test. Without a reachable server the
# PostgreSQL cases are skipped, saying why; with AGENTNB_POSTGRES_TESTS=1 (CI) they fail.
import os as _os

POSTGRES_URL = _os.environ.get("AGENTNB_TEST_POSTGRES_URL", "")
POSTGRES_REQUIRED = _os.environ.get("AGENTNB_POSTGRES_TESTS") == "1"
_postgres_state: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """Why no PostgreSQL test can run here (None when the server answers)."""
    if "reason" not in _postgres_state:
        reason = None
        if not POSTGRES_URL:
            reason = "no PostgreSQL server: set AGENTNB_TEST_POSTGRES_URL (see .ci/run)"
        else:
            try:
                import sqlalchemy as sa

                engine = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool,
                                          connect_args={"connect_timeout": 5})
                with engine.connect() as conn:
                    conn.exec_driver_sql("select 1")
                engine.dispose()
            except Exception as exc:  # the driver missing, the server down, a bad password
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                reason = f"PostgreSQL at AGENTNB_TEST_POSTGRES_URL is not reachable: {first}"
        _postgres_state["reason"] = reason
    return _postgres_state["reason"]


def require_postgres() -> None:
    """Skip (locally) or fail (CI: AGENTNB_POSTGRES_TESTS=1) when there is no server."""
    reason = postgres_unavailable()
    if reason is None:
        return
    if POSTGRES_REQUIRED:
        pytest.fail(f"AGENTNB_POSTGRES_TESTS=1 but {reason}")
    pytest.skip(reason)


class PostgresSchemas:
    """Fresh, empty schemas on the test server, each a store of its own (dropped at the end).

    A schema per store keeps the tests apart at the cost of one CREATE SCHEMA; the URL
    selects it with ``options=-csearch_path=...``, so the store's tables, its
    alembic_version and everything it runs stay inside it.
    """

    def __init__(self) -> None:
        import sqlalchemy as sa

        self._engine = sa.create_engine(POSTGRES_URL, poolclass=sa.pool.NullPool)
        self.names: list[str] = []

    def new_url(self) -> str:
        import uuid

        from sqlalchemy.engine import make_url

        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._engine.begin() as conn:
            conn.exec_driver_sql(f"create schema {name}")
        self.names.append(name)
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._engine.begin() as conn:
            for name in self.names:
                conn.exec_driver_sql(f"drop schema if exists {name} cascade")
        self.names.clear()
        self._engine.dispose()


@pytest.fixture(scope="module")
def pg_schemas():
    """Makes PostgreSQL store URLs for this module's tests; drops them after its last test."""
    require_postgres()
    schemas = PostgresSchemas()
    yield schemas
    schemas.drop_all()


@pytest.fixture
def postgres_url(pg_schemas):
    """A URL of a fresh, empty PostgreSQL store (skipped locally without a server)."""
    return pg_schemas.new_url()


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

    shells = []
    for o in gc.get_objects():
        try:
            if isinstance(o, mod.InteractiveShell):
                shells.append(o)
        except ReferenceError:  # a weakref.proxy whose object is gone (tqdm makes some)
            pass
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
