"""schemathesis against the server's own ``/openapi.json``: generated requests to every
operation (bounded, derandomized: the same examples each run), with an admin key so that
generated data reaches the handlers; no input is a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

import agentnb.serve
from agentnb.serve.server import BackgroundServer
from tests.serve_helpers import make_keys, setup_store


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "store.duckdb"
    store = setup_store(f"duckdb:///{path}")
    keys, _ = make_keys(store)
    server = BackgroundServer(agentnb.serve.app(store), "127.0.0.1", 0).start()
    yield server.url, keys
    server.stop()
    store.close()


def test_no_generated_input_is_a_server_error(live):
    url, keys = live
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    headers = {"Authorization": f"Bearer {keys['admin']}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=10, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(base_url=url, headers=headers, timeout=60)
            case.validate_response(response, checks=[not_a_server_error])
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error"} and "\n" not in body["error"]["message"], body

        check()
