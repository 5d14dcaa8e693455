"""The contract of the command layer: one operation gives one result in every front end.

Each case runs the same operation through the CLI (``agentnb ...``), ``%agent`` in an
IPython shell and the Python API, each against its own fresh store set up the same way,
and asserts the same stored result and the same message (errors included), with the
command it points at spelled the way each front end spells it.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any, Callable

import pytest
from IPython.core.error import UsageError

import agentnb
from agentnb.cli import main
from agentnb.commands import REGISTRY, spell
from agentnb.errors import UserError


# -- running one operation in each front end ------------------------------------------
def _normalise(text: str) -> str:
    """Spell every command the same way (``<agents create>``) and collapse whitespace."""
    out = " ".join(str(text).split()).replace("(see: agentnb ", "(see agentnb ")
    spellings = []
    for cmd in REGISTRY.values():
        for front in ("cli", "notebook"):
            spellings.append((spell(front, cmd.id), f"<{cmd.id}>"))
    for spelled, marker in sorted(spellings, key=lambda s: -len(s[0])):
        out = re.sub(re.escape(spelled) + r"(?![\w-])", marker, out)
    # the prog in front of a parse error: "sessions list: " (CLI) or "<sessions list>: "
    for cmd_id in sorted(REGISTRY, key=len, reverse=True):
        for prefix in (f"{cmd_id}: ", f"<{cmd_id}>: "):
            if out.startswith(prefix):
                return out[len(prefix):]
    return out


# -- which store: the default DuckDB file under each home, or a PostgreSQL store per home ----
#: home -> the AGENTNB_DATABASE_URL of its store (PostgreSQL cases; empty: DuckDB)
_URLS: dict[str, str] = {}


@pytest.fixture(autouse=True, params=["duckdb", "postgresql"])
def backend(request):
    """Every contract case on the default DuckDB store and on PostgreSQL (issue 12)."""
    _URLS.clear()
    if request.param == "postgresql":
        schemas = request.getfixturevalue("pg_schemas")
        _NEW_URL.append(schemas.new_url)
    yield request.param
    _URLS.clear()
    _NEW_URL.clear()


_NEW_URL: list[Callable[[], str]] = []


def _url(home) -> str | None:
    """The store URL of ``home`` (made on first use for PostgreSQL), None for DuckDB."""
    if not _NEW_URL:
        return None
    key = str(home)
    if key not in _URLS:
        _URLS[key] = _NEW_URL[0]()
    return _URLS[key]


def _point_at(home, monkeypatch) -> None:
    """Make the front ends (which read the environment) use ``home``'s store."""
    monkeypatch.setenv("AGENTNB_HOME", str(home))
    url = _url(home)
    if url is None:
        monkeypatch.delenv("AGENTNB_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("AGENTNB_DATABASE_URL", url)


def _snapshot(home) -> dict[str, Any]:
    store = agentnb.connect(_url(home), home=str(home))
    try:
        agents = {a.name: {"description": a.description,
                           "config": a.config.model_dump(mode="json")} for a in store.agents()}
        keys = sorted((k.name, k.is_active, k.scope) for k in store.keys())
        return {"agents": agents, "keys": keys, "counts": store.counts()}
    finally:
        store.close()


def _setup(home) -> None:
    store = agentnb.connect(_url(home), home=str(home))
    try:
        calc = store.create_agent("calc", model="offline", system="You add numbers.")
        calc.chat("What is 2+2?")
        store.create_agent("helper")
        store.create_key("calc", "old")
    finally:
        store.close()


class Outcome:
    def __init__(self, ok: bool, message: str = "", data: Any = None) -> None:
        self.ok, self.message, self.data = ok, _normalise(message), data

    def __repr__(self) -> str:
        return f"Outcome(ok={self.ok}, message={self.message!r}, data={self.data!r})"


def via_cli(home, monkeypatch, argv: list[str], *, as_json: bool = False) -> Outcome:
    _point_at(home, monkeypatch)
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, *(["--json"] if as_json else [])], out=out, err=err)
    if code == 2:
        lines = err.getvalue().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("agentnb: error: "), err.getvalue()
        return Outcome(False, lines[0].removeprefix("agentnb: error: "))
    assert code == 0, err.getvalue()
    text = out.getvalue()
    return Outcome(True, text if not as_json else "", json.loads(text) if as_json else None)


def via_magic(home, monkeypatch, line: str, *, as_json: bool = False) -> Outcome:
    from IPython.core.history import HistoryManager
    from IPython.core.interactiveshell import InteractiveShell

    _point_at(home, monkeypatch)
    monkeypatch.setattr(HistoryManager, "enabled", False)
    shell = InteractiveShell()
    shell.extension_manager.load_extension("agentnb")
    try:
        try:
            result = shell.run_line_magic("agent", line)
        except UsageError as exc:
            return Outcome(False, str(exc))
        if as_json:
            import pandas as pd

            if isinstance(result, pd.DataFrame):
                return Outcome(True, "", json.loads(result.to_json(orient="records",
                                                                   date_format="iso")))
            return Outcome(True, "", json.loads(json.dumps(result.to_json())))
        from agentnb.render.results import Notice

        if isinstance(result, Notice):  # its text; a notebook may add a hint below it
            return Outcome(True, result.text)
        return Outcome(True, result.to_text() if hasattr(result, "to_text") else str(result))
    finally:
        shell.extension_manager.unload_extension("agentnb")


def via_python(home, monkeypatch, call: Callable[[Any], Any]) -> Outcome:
    _point_at(home, monkeypatch)
    store = agentnb.connect()
    try:
        value = call(store)
    except UserError as exc:
        return Outcome(False, str(exc))
    finally:
        store.close()
    return Outcome(True, "", value)


def run_everywhere(tmp_path, monkeypatch, *, cli: list[str], magic: str,
                   python: Callable[[Any], Any] | None = None, as_json: bool = False):
    """The outcome and the stored result of one operation in each front end."""
    results = {}
    for name in ("cli", "magic", "python"):
        if name == "python" and python is None:
            continue
        home = tmp_path / name
        home.mkdir()
        _setup(home)
        if name == "cli":
            outcome = via_cli(home, monkeypatch, cli, as_json=as_json)
        elif name == "magic":
            outcome = via_magic(home, monkeypatch, magic, as_json=as_json)
        else:
            outcome = via_python(home, monkeypatch, python)
        results[name] = (outcome, _snapshot(home))
    return results


def _same_store(results) -> None:
    stores = {name: snapshot for name, (_, snapshot) in results.items()}
    first = next(iter(stores.values()))
    for name, snapshot in stores.items():
        assert snapshot == first, name


# -- writes: the same stored result, the same message -----------------------------------
WRITES = [
    # (id, CLI argv, %agent line, Python call)
    ("create", ["agents", "create", "x", "--model", "offline", "--system", "Hi there"],
     "create x --model offline --system 'Hi there'",
     lambda s: s.create_agent("x", model="offline", system="Hi there")),
    ("create-exist-ok", ["agents", "create", "calc", "--exist-ok"], "create calc --exist-ok",
     lambda s: s.create_agent("calc", exist_ok=True)),
    ("update-values", ["agents", "update", "calc", "temperature=0.5", "description=1e3",
                       "max_iterations=4", "auto_approve=true", "tools=add,mul"],
     "set calc temperature=0.5 description=1e3 max_iterations=4 auto_approve=true tools=add,mul",
     lambda s: s.update_agent("calc", temperature=0.5, description="1e3", max_iterations=4,
                              auto_approve=True, tools=["add", "mul"])),
    ("update-text-as-typed", ["agents", "update", "calc", "description=true"],
     "set calc description=true", lambda s: s.update_agent("calc", description="true")),
    ("update-null-is-text", ["agents", "update", "calc", "description=null"],
     "set calc description=null", lambda s: s.update_agent("calc", description="null")),
    ("update-json-string", ["agents", "update", "calc", 'description="quoted"'],
     """set calc 'description="quoted"'""", lambda s: s.update_agent("calc", description="quoted")),
    ("update-remove", ["agents", "update", "calc", "temperature=0.2"],
     "set calc temperature=0.2", lambda s: s.update_agent("calc", temperature=0.2)),
    ("update-rename", ["agents", "update", "calc", "name=adder"], "set calc name=adder",
     lambda s: s.update_agent("calc", name="adder")),
    ("delete", ["agents", "delete", "calc", "--yes"], "delete calc --yes",
     lambda s: s.delete_agent("calc")),
    ("new-session", ["sessions", "new", "calc", "--title", "fresh"], "new --title fresh",
     None),
    ("keys-revoke-unknown", ["keys", "revoke", "deadbeef"], "keys revoke deadbeef",
     lambda s: s.revoke_key("deadbeef")),
]


@pytest.mark.parametrize("case", WRITES, ids=[c[0] for c in WRITES])
def test_writes_store_the_same_and_say_the_same(tmp_path, monkeypatch, case):
    _, argv, line, call = case
    if line.startswith("new"):
        line = "use calc"  # the notebook's new session is of the current agent
        results = run_everywhere(tmp_path, monkeypatch, cli=argv, magic=line)
    else:
        results = run_everywhere(tmp_path, monkeypatch, cli=argv, magic=line, python=call)
    cli_outcome = results["cli"][0]
    magic_outcome = results["magic"][0]
    if case[0] != "new-session":
        _same_store(results)
        assert cli_outcome.ok == magic_outcome.ok
        assert cli_outcome.message == magic_outcome.message, (cli_outcome, magic_outcome)
    if not cli_outcome.ok:
        assert results["python"][0].message == cli_outcome.message


def test_update_remove_a_key_everywhere(tmp_path, monkeypatch):
    """``key=`` and ``--unset key`` remove a setting, like None in Python."""
    for name, run in [
        ("cli", lambda h: via_cli(h, monkeypatch, ["agents", "update", "calc", "temperature="])),
        ("cli-unset", lambda h: via_cli(h, monkeypatch,
                                        ["agents", "update", "calc", "--unset", "temperature"])),
        ("magic", lambda h: via_magic(h, monkeypatch, "set calc temperature=")),
        ("python", lambda h: via_python(h, monkeypatch,
                                        lambda s: s.update_agent("calc", temperature=None))),
    ]:
        home = tmp_path / name
        home.mkdir()
        _setup(home)
        store = agentnb.connect(_url(home), home=str(home))
        store.update_agent("calc", temperature=0.7)
        store.close()
        outcome = run(home)
        assert outcome.ok, (name, outcome)
        assert _snapshot(home)["agents"]["calc"]["config"]["model_kwargs"] == {}, name


# -- bad input: one line, the same line, nothing stored ------------------------------------
BAD = [
    ("create-bad-model", ["agents", "create", "x", "--model", "foo"], "create x --model foo",
     lambda s: s.create_agent("x", model="foo"), "model spec 'foo' has no provider"),
    ("create-duplicate", ["agents", "create", "calc"], "create calc",
     lambda s: s.create_agent("calc"), "an agent named 'calc' already exists"),
    ("create-bad-name", ["agents", "create", "1x"], "create 1x",
     lambda s: s.create_agent("1x"), "invalid agent name '1x'"),
    ("update-bad-float", ["agents", "update", "calc", "temperature=abc"],
     "set calc temperature=abc", lambda s: s.update_agent("calc", temperature="abc"),
     "temperature: expects a number, got 'abc'"),
    ("update-unknown", ["agents", "update", "calc", "colour=blue"], "set calc colour=blue",
     lambda s: s.update_agent("calc", colour="blue"), "unknown setting 'colour'"),
    ("update-not-a-model-setting", ["agents", "update", "calc", "base_url=http://x"],
     "set calc base_url=http://x", lambda s: s.update_agent("calc", base_url="http://x"),
     "'base_url' is not a setting of offline models"),
    ("update-bad-model", ["agents", "update", "calc", "model=llama3"], "set calc model=llama3",
     lambda s: s.update_agent("calc", model="llama3"), "has no provider"),
    ("update-secret", ["agents", "update", "calc", "api_key=sk-123"], "set calc api_key=sk-123",
     lambda s: s.update_agent("calc", api_key="sk-123"), "looks like a secret"),
    ("update-bad-range", ["agents", "update", "calc", "max_iterations=0"],
     "set calc max_iterations=0", lambda s: s.update_agent("calc", max_iterations=0),
     "max_iterations"),
    ("unknown-agent", ["agents", "show", "calk"], "show calk", lambda s: s.agent("calk"),
     "no agent named 'calk'; did you mean 'calc'?"),
    ("unknown-session", ["sessions", "export", "ffffffff"], "export ffffffff",
     lambda s: s.export("ffffffff"), "no session ffffffff"),
    ("bad-limit", ["sessions", "list", "--limit", "99999999999999999999"],
     "sessions --limit 99999999999999999999", None, "must be at most 1,000,000"),
    ("bad-usage-group", ["usage", "--by", "week"], "usage --by week", None,
     "must be one of agent, session, model, day or user"),
    ("sql-write", ["sql", "delete from agents"], "sql delete from agents",
     lambda s: s.sql_rows("delete from agents"), "read-only"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_the_same_one_line_everywhere(tmp_path, monkeypatch, case):
    _, argv, line, call, fragment = case
    results = run_everywhere(tmp_path, monkeypatch, cli=argv, magic=line, python=call)
    _same_store(results)
    messages = {name: outcome.message for name, (outcome, _) in results.items()}
    for name, (outcome, snapshot) in results.items():
        assert not outcome.ok, (name, outcome)
        assert fragment in outcome.message, (name, outcome.message)
        assert "sk-123" not in outcome.message
    assert messages["cli"] == messages["magic"], messages
    if "python" in messages:
        assert messages["python"] == messages["cli"], messages
    # nothing was written
    home = tmp_path / "fresh"
    home.mkdir()
    _setup(home)
    assert results["cli"][1] == _snapshot(home)


# -- reads: the same data -----------------------------------------------------------------
READS = [
    ("agents-list", ["agents", "list"], "list"),
    ("agents-show", ["agents", "show", "calc"], "show calc"),
    ("templates", ["templates", "list"], "templates"),
    ("template", ["templates", "show", "researcher"], "template researcher"),
    ("models", ["models"], "models"),
    ("keys-list", ["keys", "list"], "keys list"),
    ("usage-model", ["usage", "--by", "model"], "usage --by model"),
    ("usage-day", ["usage", "--by", "day"], "usage --by day"),
    ("usage-user", ["usage", "--by", "user"], "usage --by user"),
    ("sessions-of-a-user", ["sessions", "list", "--user", "nobody"],
     "sessions --all --user nobody"),
    ("sql", ["sql", "select name from agents order by name"],
     "sql select name from agents order by name"),
    ("db-current", ["db", "current"], "db current"),
    ("tools", ["tools", "list", "calc"], "tools calc"),
]


@pytest.mark.parametrize("case", READS, ids=[c[0] for c in READS])
def test_reads_give_the_same_data(tmp_path, monkeypatch, case):
    _, argv, line = case
    results = run_everywhere(tmp_path, monkeypatch, cli=argv, magic=line, as_json=True)
    cli_data, magic_data = results["cli"][0].data, results["magic"][0].data

    def strip_volatile(value):  # ids and times differ between the two stores
        text = json.dumps(value, sort_keys=True)
        text = re.sub(r'"[0-9a-f]{8}-[0-9a-f-]{27}"', '"<id>"', text)
        text = re.sub(r'"\d{4}-\d\d-\d\dT[\d:.+]+"', '"<time>"', text)
        text = re.sub(r"/[^\"]*/(cli|magic)(/|\")", r"/<home>\2", text)
        text = re.sub(r"anb_[A-Za-z0-9_-]{8}", "anb_<prefix>", text)
        text = re.sub(r"search_path%3Dt_[0-9a-f]{12}", "<schema>", text)  # PostgreSQL's
        return json.loads(text)

    assert strip_volatile(cli_data) == strip_volatile(magic_data)


def test_the_python_api_reads_the_same_rows(tmp_path, monkeypatch):
    """What the listings show is what the Python API returns."""
    results = run_everywhere(tmp_path, monkeypatch, cli=["sessions", "list"],
                             magic="sessions --all", as_json=True,
                             python=lambda s: [str(x.session.id) for x in s.sessions()])
    assert len(results["cli"][0].data) == len(results["magic"][0].data) == 1
    assert len(results["python"][0].data) == 1
    assert [s["turns"] for s in results["cli"][0].data] == \
        [s["turns"] for s in results["magic"][0].data]


def test_exports_are_the_same_text(tmp_path, monkeypatch):
    texts = {}
    for name in ("cli", "magic", "python"):
        home = tmp_path / name
        home.mkdir()
        _setup(home)
        store = agentnb.connect(_url(home), home=str(home))
        sid = store.sessions("calc")[0].session.id
        store.close()
        if name == "cli":
            out = via_cli(home, monkeypatch, ["sessions", "export", str(sid)])
            texts[name] = out.message
        elif name == "magic":
            texts[name] = via_magic(home, monkeypatch, f"export {sid}").message
        else:
            texts[name] = _normalise(via_python(home, monkeypatch, lambda s: s.export(sid)).data)
    norm = {k: re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\b[0-9a-f]{8}\b|\d{4}-\d\d-\d\d \d\d:\d\d",
                      "X", v)
            for k, v in texts.items()}
    assert norm["cli"] == norm["magic"] == norm["python"]
