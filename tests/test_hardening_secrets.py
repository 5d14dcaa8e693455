"""Issue 9, item 2: no secret of a database URL is shown, wherever a URL is shown.

``agentnb.text.mask_urls`` is the one rule (``config.mask_url`` and every
UserError line go through it): the password of ``user:password@`` and the
value of each query parameter whose name holds a secret.
"""

from __future__ import annotations

import json

import pytest

from agentnb.cli import main
from agentnb.config import mask_url
from agentnb.errors import ConfigError, UserError, error_text
from agentnb.text import mask_urls

SECRET = "S3CRETvalue"

URLS = [
    f"postgresql://u@host/db?password={SECRET}",
    f"postgresql+psycopg://u:{SECRET}@host:5432/db",
    f"postgresql://u@host/db?sslmode=require&sslpassword={SECRET}&application_name=nb",
    f"duckdb:///md:store?motherduck_token={SECRET}",
    f"postgresql://u@host/db?api_key={SECRET}",
    f"postgresql://u@host/db?PASSWORD={SECRET}",
    f"postgresql://u@host/db?secret={SECRET}&x=1",
    f"postgresql://u:{SECRET}@host/db?access_token={SECRET}",
]


@pytest.mark.parametrize("url", URLS)
def test_mask_url_hides_every_secret_part(url):
    shown = mask_url(url)
    assert SECRET not in shown and "***" in shown
    assert shown.split("://")[0] == url.split("://")[0]  # still recognisable


def test_mask_keeps_what_is_not_secret():
    assert mask_url("duckdb:////tmp/x.duckdb") == "duckdb:////tmp/x.duckdb"
    assert mask_url("postgresql://u@h/db?sslmode=require&application_name=nb") == \
        "postgresql://u@h/db?sslmode=require&application_name=nb"
    assert mask_urls(f"cannot open postgresql://u@h/db?token={SECRET}: refused.") == \
        "cannot open postgresql://u@h/db?token=***: refused."


def test_error_lines_mask_urls():
    assert SECRET not in str(UserError(f"bad store postgresql://u@h/db?password={SECRET}"))
    assert SECRET not in str(ConfigError(f"x 'postgresql://u:{SECRET}@h/db'"))
    assert SECRET not in error_text(RuntimeError(f"at postgresql://u@h/db?password={SECRET}"))


@pytest.fixture
def pg_env(monkeypatch, isolated_home):
    monkeypatch.setenv("AGENTNB_DATABASE_URL", f"postgresql://u@host/db?password={SECRET}")


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_config_show_masks_the_query_string(pg_env, capsys):
    code, out, err = _run(capsys, "config", "show")
    assert code == 0 and SECRET not in out + err and "password=***" in out
    code, out, err = _run(capsys, "config", "show", "--json")
    assert code == 0 and SECRET not in out + err
    assert "password=***" in json.dumps(json.loads(out))


def test_db_path_masks_the_query_string(pg_env, capsys):
    code, out, err = _run(capsys, "db", "path")
    assert code == 0 and SECRET not in out + err and "password=***" in out
    code, out, err = _run(capsys, "db", "path", "--json")
    assert code == 0 and SECRET not in out + err


def test_an_error_line_masks_the_url(capsys, isolated_home):
    code, out, err = _run(capsys, "--db", f"nosuchdialect://u:{SECRET}@h/db?password={SECRET}",
                          "agents", "list")
    assert code == 2 and SECRET not in out + err
    assert err.startswith("agentnb: error: ") and len(err.strip().splitlines()) == 1


# -- found beyond the list: a secret in a stored URL ------------------------------------


def test_a_url_with_a_secret_is_never_stored(duck_store, capsys, tmp_path):
    from agentnb.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="secret") as info:
        duck_store.create_agent("o", model="openai:gpt-4o",
                                base_url=f"http://h/v1?api_key={SECRET}")
    assert SECRET not in str(info.value)
    assert duck_store.agents() == []
    url = f"duckdb:///{tmp_path}/s.duckdb"
    assert main(["--db", url, "agents", "create", "m"]) == 0
    capsys.readouterr()
    code = main(["--db", url, "mcp", "add", "m", "docs", "--url",
                 f"http://127.0.0.1:9/mcp?token={SECRET}"])
    err = capsys.readouterr().err
    assert code == 2 and SECRET not in err and "holds a secret" in err
    assert main(["--db", url, "agents", "show", "m", "--json"]) == 0
    assert SECRET not in capsys.readouterr().out
