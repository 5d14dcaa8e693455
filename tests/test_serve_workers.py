"""``agentnb serve --workers N`` on PostgreSQL (issue 12 item 4): several uvicorn worker
processes, each building the app from the factory, on one shared store. Skipped locally
without a server (AGENTNB_TEST_POSTGRES_URL); CI runs it."""

from __future__ import annotations

import concurrent.futures

import httpx

import agentnb
from tests.serve_helpers import ServeProcess


def test_workers_serve_one_postgresql_store(postgres_url):
    store = agentnb.connect(postgres_url)
    store.create_agent("calc", model="offline", tools=["query_store"])
    key = store.create_key("calc").key
    store.close()
    proc = ServeProcess(postgres_url, "--workers", "2")
    try:
        headers = {"Authorization": f"Bearer {key}"}

        def one(i: int) -> tuple[int, str]:
            r = httpx.post(proc.url + "/v1/chat/completions", headers=headers, timeout=120,
                           json={"model": "calc", "messages": [
                               {"role": "user", "content": f"hello number {i}"}]})
            return r.status_code, r.headers.get("X-Agentnb-Session", "")

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(24)))
        assert [code for code, _ in results] == [200] * 24
        sessions = {s for _, s in results}
        assert len(sessions) == 24
    finally:
        err = proc.stop()
    assert proc.proc.returncode == 0, err
    assert err.count("Started server process") == 2, err
    assert "***@" in proc.banner  # the store's URL is shown with its password masked
    store = agentnb.connect(postgres_url)
    try:
        listed = {str(s.session.id) for s in store.sessions("calc")}
        assert sessions <= listed
        assert all(s.messages == 2 for s in store.sessions("calc"))
    finally:
        store.close()
