"""agentnb.tools: functions -> tools, the registry, built-ins, and running calls."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Literal

import pandas as pd
import pytest
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel

from agentnb.errors import InvalidValueError, NotFoundError, ToolDefinitionError, UserError
from agentnb.tools import (
    BUILTIN_TOOL_NAMES,
    ToolOutcome,
    ToolRegistry,
    ToolSpec,
    builtin_tools,
    run_tool_call,
    tool_from_function,
)


def run(spec: ToolSpec, args: dict, timeout: float = 10.0, **kw) -> ToolOutcome:
    return asyncio.run(run_tool_call(spec, args, timeout=timeout, **kw))


# -- functions become tools -------------------------------------------------------
def search_docs(query: str, limit: int = 5, kind: Literal["api", "guide"] = "api") -> list[str]:
    """Search the documentation.

    Returns the titles of matching pages.

    Args:
        query: words to look for
        limit: how many titles to return at most
        kind: which part of the docs to search
    """
    return [f"{kind}:{query}"] * limit


def test_function_becomes_tool_with_schema_from_hints_and_docstring():
    spec = tool_from_function(search_docs)
    assert spec.name == "search_docs"
    assert spec.source == "notebook"
    assert spec.requires_approval is False
    assert spec.description.startswith("Search the documentation.")
    assert "Args:" not in spec.description  # argument docs go to the schema, not the description
    schema = spec.tool.tool_call_schema.model_json_schema()
    props = schema["properties"]
    assert list(props) == ["query", "limit", "kind"]
    assert props["query"]["type"] == "string"
    assert props["query"]["description"] == "words to look for"
    assert props["limit"]["type"] == "integer"
    assert props["limit"]["default"] == 5
    assert props["limit"]["description"] == "how many titles to return at most"
    assert props["kind"]["enum"] == ["api", "guide"]
    assert schema["required"] == ["query"]


def test_plain_docstring_is_the_description_and_names_can_be_overridden():
    def shout(text: str) -> str:
        """Upper-case some text.

        Parameters
        ----------
        text : the text
        """
        return text.upper()

    spec = tool_from_function(shout, name="loud", description="Make text loud.", requires_approval=True)
    assert (spec.name, spec.description, spec.requires_approval) == ("loud", "Make text loud.", True)
    assert tool_from_function(shout).description.startswith("Upper-case some text.\n\nParameters")


class Point(BaseModel):
    x: float
    y: float


def test_pydantic_parameters_are_allowed():
    def norm(p: Point) -> float:
        """Length of a point's vector."""
        return (p.x**2 + p.y**2) ** 0.5

    spec = tool_from_function(norm)
    assert "Point" in str(spec.tool.tool_call_schema.model_json_schema())
    assert run(spec, {"p": {"x": 3, "y": 4}}).output == "5.0"


def test_langchain_plumbing_parameters_stay_out_of_the_schema():
    def tagged(text: str, config: RunnableConfig) -> str:
        """Echo the text with the run's tags."""
        return f"{text} {config.get('tags')}"

    spec = tool_from_function(tagged)
    assert list(spec.tool.tool_call_schema.model_json_schema()["properties"]) == ["text"]


def test_lambda_is_refused():
    with pytest.raises(ToolDefinitionError, match="a lambda cannot be a tool: give it a name with def"):
        tool_from_function(lambda x: x)


def test_missing_docstring_is_refused():
    def undocumented(x: int) -> int:
        return x

    with pytest.raises(ToolDefinitionError) as info:
        tool_from_function(undocumented)
    message = str(info.value)
    assert "undocumented" in message
    assert "add a docstring saying what it does" in message
    assert "\n" not in message
    # a description given explicitly is enough
    assert tool_from_function(undocumented, description="Echo x.").description == "Echo x."


def test_unannotated_parameter_is_refused():
    def half(x, y: int) -> int:
        """Half."""
        return x // 2

    with pytest.raises(ToolDefinitionError) as info:
        tool_from_function(half)
    assert "half" in str(info.value)
    assert "annotate parameter 'x' (e.g. x: int)" in str(info.value)


def test_star_args_and_kwargs_are_refused():
    def total(*numbers: int) -> int:
        """Sum."""
        return sum(numbers)

    def configure(**options: str) -> str:
        """Configure."""
        return ""

    with pytest.raises(ToolDefinitionError, match=r"total\(\) takes \*numbers"):
        tool_from_function(total)
    with pytest.raises(ToolDefinitionError, match=r"configure\(\) takes \*\*options"):
        tool_from_function(configure)


def test_other_unusable_definitions_are_refused_with_a_fix():
    def rows(df: pd.DataFrame) -> int:
        """Count rows."""
        return len(df)

    with pytest.raises(ToolDefinitionError, match="parameter 'df' has type DataFrame, which the model cannot send as JSON"):
        tool_from_function(rows)

    def mismatched(a: int) -> int:
        """Something.

        Args:
            b: not a parameter
        """
        return a

    with pytest.raises(ToolDefinitionError, match="docstring does not match its parameters"):
        tool_from_function(mismatched)
    with pytest.raises(ToolDefinitionError, match="is a int, not a function"):
        tool_from_function(42)  # type: ignore[arg-type]
    def later(p: "NotDefinedYet") -> int:  # noqa: F821
        """Uses a type defined nowhere."""
        return 0

    with pytest.raises(ToolDefinitionError, match=r"later\(\): its type hints cannot be resolved .*NotDefinedYet"):
        tool_from_function(later)
    with pytest.raises(ToolDefinitionError, match="tool name 'has space' is not usable"):
        tool_from_function(search_docs, name="has space")
    # every refusal is a UserError: front ends show it as one line
    assert issubclass(ToolDefinitionError, UserError)


def test_langchain_tool_is_taken_as_it_is():
    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    assert isinstance(multiply, BaseTool)
    spec = tool_from_function(multiply)
    assert spec.tool is multiply
    assert (spec.name, spec.source, spec.description) == ("multiply", "langchain", "Multiply two integers.")
    renamed = ToolRegistry().register(multiply, name="times")
    assert renamed.name == "times" and renamed.tool.name == "times" and multiply.name == "multiply"
    assert run(spec, {"a": 6, "b": 7}).output == "42"


def test_async_function_becomes_a_coroutine_tool():
    async def fetch(key: str) -> dict:
        """Look a key up."""
        await asyncio.sleep(0)
        return {"key": key, "thread": threading.current_thread().name}

    spec = tool_from_function(fetch)
    assert spec.is_async
    outcome = run(spec, {"key": "k"})
    assert outcome.status == "success"
    # JSON for the model; async tools run on the event loop, not in a worker thread
    assert outcome.output == '{"key": "k", "thread": "MainThread"}'


# -- the registry -----------------------------------------------------------------
def test_registry_register_replace_resolve_remove():
    registry = ToolRegistry()
    first = registry.register(search_docs)
    assert "search_docs" in registry and registry.names() == ["search_docs"]

    def search_docs_v2(query: str) -> str:  # the notebook user redefines the function
        """Search the documentation, better."""
        return query

    second = registry.register(search_docs_v2, name="search_docs", requires_approval=True)
    assert registry.get("search_docs") is second and second is not first
    assert registry.get("search_docs").requires_approval is True
    assert len(registry) == 1

    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    registry.register(add)
    assert [s.name for s in registry.resolve(["add", "search_docs"])] == ["add", "search_docs"]
    assert list(registry) == ["add", "search_docs"]
    registry.remove("add")
    assert "add" not in registry


def test_registry_unknown_name_suggests_a_close_one():
    registry = ToolRegistry()
    registry.register(search_docs)
    with pytest.raises(InvalidValueError) as info:
        registry.resolve(["serch_docs"])
    assert str(info.value) == "no tool named 'serch_docs'; did you mean 'search_docs'? (tools: search_docs)"
    with pytest.raises(NotFoundError, match="no tool named 'zzz' \\(tools: search_docs\\)"):
        registry.get("zzz")
    with pytest.raises(InvalidValueError, match="no tools registered yet"):
        ToolRegistry().resolve(["x"])


def test_registries_do_not_share_state():
    a, b = ToolRegistry(), ToolRegistry()
    a.register(search_docs)
    assert "search_docs" not in b


# -- built-in tools ----------------------------------------------------------------
NOTEBOOK_CELLS = '''
import pandas as pd
import os
from os.path import join
df = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"], "temp": [3.5, 18.0, 31.2]})
config = {"alpha": 0.1, "beta": [1, 2, 3]}
name = "demo"
def celsius_to_f(c: float) -> float:
    """Convert Celsius to Fahrenheit."""
    return c * 9 / 5 + 32
class Point:
    pass
_private = 1
_ = 3
In = ["%load_ext agentnb"]
Out = {}
def get_ipython():
    return None
exit = quit = object()
'''


@pytest.fixture
def namespace():
    """A namespace like an IPython kernel's user_ns after a few cells."""
    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(NOTEBOOK_CELLS, ns)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        pass
    else:
        ns["np"] = np
        ns["arr"] = np.arange(12, dtype="float64").reshape(3, 4)
    return ns


def test_builtin_tools_made_from_what_is_given(namespace):
    assert BUILTIN_TOOL_NAMES == ("list_variables", "describe_variable", "run_python", "query_store")
    assert builtin_tools(namespace=None, sql_rows=None) == {}
    tools = builtin_tools(namespace=namespace, sql_rows=None)
    assert sorted(tools) == ["describe_variable", "list_variables", "run_python"]
    assert all(s.source == "builtin" for s in tools.values())
    assert tools["run_python"].requires_approval is True
    assert tools["list_variables"].requires_approval is False
    assert list(builtin_tools(namespace=None, sql_rows=lambda q, n=None: ([], []))) == ["query_store"]


def test_list_variables_shows_user_variables_only(namespace):
    out = run(builtin_tools(namespace=namespace)["list_variables"], {}).output
    lines = out.splitlines()
    assert lines[0].split() == ["name", "type", "summary"]
    listed = {line.split()[0]: line for line in lines[2:]}
    assert "shape (3, 2); columns: city, temp" in listed["df"]
    assert " DataFrame " in listed["df"]
    assert "len 2: {'alpha': 0.1, 'beta': [1, 2, 3]}" in listed["config"]
    assert "function" in listed["celsius_to_f"]
    assert "celsius_to_f(c: float) -> float - Convert Celsius to Fahrenheit." in listed["celsius_to_f"]
    assert "class" in listed["Point"]
    assert "'demo'" in listed["name"]
    if "arr" in namespace:
        assert "shape (3, 4); dtype float64" in listed["arr"]
    for hidden in ("pd", "os", "np", "join", "_private", "_", "In", "Out", "get_ipython", "exit",
                   "quit", "__name__", "__builtins__"):
        assert hidden not in listed


def test_odd_objects_do_not_break_the_listing(namespace):
    class Odd:
        @property
        def shape(self):
            raise RuntimeError("no shape today")

        def __repr__(self):
            return "<Odd>"

    namespace["odd"] = Odd()
    tools = builtin_tools(namespace=namespace)
    out = run(tools["list_variables"], {}).output
    assert [line for line in out.splitlines() if line.startswith("odd ")][0].split() == ["odd", "Odd", "<Odd>"]
    described = run(tools["describe_variable"], {"name": "odd"})
    assert described.status == "success" and "<Odd>" in described.output


def test_list_variables_on_an_empty_notebook():
    assert run(builtin_tools(namespace={})["list_variables"], {}).output == "The notebook has no user variables yet."


def test_describe_variable(namespace):
    describe = builtin_tools(namespace=namespace)["describe_variable"]
    out = run(describe, {"name": "df"}).output
    assert out.splitlines()[0] == "df: pandas.DataFrame" or out.splitlines()[0].startswith("df: pandas.")
    assert "shape: (3, 2)" in out
    assert "columns (dtype):" in out and "temp  float64" in out
    assert "Lima" in out and "31.2" in out  # the head

    out = run(describe, {"name": "config"}).output
    assert out.splitlines()[:2] == ["config: dict", "len: 2"]
    assert "{'alpha': 0.1, 'beta': [1, 2, 3]}" in out

    out = run(describe, {"name": "celsius_to_f"}).output
    assert "signature: celsius_to_f(c: float) -> float" in out
    assert "Convert Celsius to Fahrenheit." in out

    if "arr" in namespace:
        out = run(describe, {"name": "arr"}).output
        assert "shape: (3, 4)" in out and "dtype: float64" in out and "array([[ 0.,  1." in out

    namespace["big"] = list(range(10_000))
    out = run(describe, {"name": "big"}).output
    assert len(out) < 2_200 and "more chars]" in out


def test_describe_unknown_variable_suggests_close_names(namespace):
    describe = builtin_tools(namespace=namespace)["describe_variable"]
    outcome = run(describe, {"name": "dff"})
    assert outcome.status == "error"
    assert outcome.error_message.startswith("no notebook variable named 'dff'; did you mean 'df'")
    outcome = run(describe, {"name": "_private"})  # hidden names are not described either
    assert outcome.status == "error" and "no notebook variable named '_private'" in outcome.error_message


def test_run_python_captures_stdout_and_final_expression(namespace):
    run_python = builtin_tools(namespace=namespace)["run_python"]
    code = "print('rows:', len(df))\nhottest = float(df.temp.max())\n{'hottest': hottest, 'n': len(df)}"
    outcome = run(run_python, {"code": code})
    assert outcome.status == "success"
    assert outcome.output == "rows: 3\n{'hottest': 31.2, 'n': 3}"  # printed text, then the value's repr
    assert namespace["hottest"] == 31.2  # it ran in the notebook's namespace
    # the agent's code does not inherit agentnb's `from __future__ import annotations`
    assert run(run_python, {"code": "def g(x: int): pass\ng.__annotations__"}).output == "{'x': <class 'int'>}"
    assert run(run_python, {"code": "x = 1"}).output == "(no output)"
    assert run(run_python, {"code": "import sys\nprint('oops', file=sys.stderr)"}).output == "oops"


def test_run_python_errors_show_the_traceback_tail(namespace):
    run_python = builtin_tools(namespace=namespace)["run_python"]
    outcome = run(run_python, {"code": "print('before')\ndef f():\n    return 1 / 0\nf()"})
    assert outcome.status == "error"
    assert outcome.error_message.startswith("output before the error:\nbefore\n\nTraceback (most recent call last):")
    assert 'File "<agent-code>", line 4, in <module>' in outcome.error_message
    assert outcome.error_message.endswith("ZeroDivisionError: division by zero")
    assert "builtins.py" not in outcome.error_message  # no agentnb frames

    outcome = run(run_python, {"code": "def (:"})
    assert outcome.status == "error" and "SyntaxError" in outcome.error_message

    outcome = run(run_python, {"code": "raise SystemExit(3)"})
    assert outcome.status == "error" and outcome.error_message.endswith("SystemExit: 3")


def test_run_python_leaves_the_notebook_output_alone(namespace):
    run_python = builtin_tools(namespace=namespace)["run_python"]
    before = sys.stdout
    outcome = run(run_python, {"code": "print('captured')"})
    assert outcome.output == "captured"
    assert sys.stdout is before


@pytest.fixture
def real_store(tmp_path):
    import agentnb

    store = agentnb.connect(f"duckdb:///{tmp_path}/s.duckdb")
    store.create_agent("a")
    yield store
    store.close()


def test_query_store_reads_the_store(real_store):
    query = builtin_tools(namespace=None, sql_rows=real_store.sql_rows)["query_store"]
    # the description names every table of the store (it fails here when the schema drifts)
    _, tables = real_store.sql_rows(
        "select table_name from information_schema.tables where table_schema = 'main'"
    )
    for (table,) in tables:
        if table != "alembic_version":
            assert f"{table} (" in query.description
    outcome = run(query, {"sql": "select name from agents"})
    assert outcome.status == "success"
    assert outcome.output == "name\n----\na\n(1 row)"


def test_query_store_cuts_long_results(real_store):
    query = builtin_tools(sql_rows=real_store.sql_rows)["query_store"]
    out = run(query, {"sql": "select * from range(120) t(n)"}).output
    lines = out.splitlines()
    assert lines[:3] == ["n", "--", "0"]
    assert "49" in lines and "50" not in lines
    assert lines[-1] == "[70 more rows not shown; 120 in all - add a LIMIT or aggregate]"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select * from read_csv('/etc/passwd')", "table function read_csv() is not allowed"),
        ("select * from read_text('/etc/hosts')", "table function read_text() is not allowed"),
        ("select * from glob('*')", "table function glob() is not allowed"),
        ("describe select * from read_csv('/etc/hosts')", "table function read_csv() is not allowed"),
        ("with t as (select * from read_blob('/etc/hosts')) select * from t", "read_blob() is not allowed"),
        ("select * from agents where name in (select content from read_text('/etc/hosts'))", "read_text()"),
        ("select * from '/etc/passwd'", "'/etc/passwd' is not a table of the store"),
        ("select * from 'notes.csv'", "'notes.csv' is not a table of the store"),
        ("select * from \"data.parquet\"", "'data.parquet' is not a table of the store"),
        ("attach '/tmp/other._db' as other", "only SELECT queries are allowed here, not ATTACH statements"),
        ("copy agents to '/tmp/out.csv'", "not COPY statements"),
        ("install httpfs", "not"),
        ("load httpfs", "not"),
        ("insert into agents (name) values ('x')", "not INSERT statements"),
        ("delete from agents", "not DELETE statements"),
        ("select 1; select 2", "one SQL statement at a time"),
        ("select getenv('HOME')", "function getenv() is not allowed"),
    ],
)
def test_query_store_refuses_files_and_writes(real_store, sql, expected):
    query = builtin_tools(sql_rows=real_store.sql_rows)["query_store"]
    outcome = run(query, {"sql": sql})
    assert outcome.status == "error"
    assert expected in outcome.error_message
    assert "root:" not in outcome.error_message
    # nothing was written
    assert real_store.sql_rows("select count(*) from agents")[1] == [(1,)]


def test_query_store_sql_errors_are_readable(real_store):
    query = builtin_tools(sql_rows=real_store.sql_rows)["query_store"]
    outcome = run(query, {"sql": "select * from nope"})
    assert outcome.status == "error"
    assert outcome.error_message.startswith("SQL error: Catalog Error: Table with name nope does not exist")
    outcome = run(query, {"sql": "selec 1"})
    assert outcome.status == "error" and outcome.error_message.startswith("SQL error:")


# -- running tool calls --------------------------------------------------------------
def test_runner_success_and_result_text():
    def stats(values: list[float]) -> dict:
        """Min and max."""
        return {"min": min(values), "max": max(values)}

    outcome = run(tool_from_function(stats), {"values": [3, 1, 2]})
    assert outcome.status == "success"
    assert outcome.output == '{"min": 1.0, "max": 3.0}'
    assert outcome.error_message is None
    assert outcome.execution_time_ms >= 0

    def nothing(x: int) -> None:
        """Do nothing."""

    assert run(tool_from_function(nothing), {"x": 1}).output == "(no return value)"

    def frame(n: int) -> object:
        """A frame."""
        return pd.DataFrame({"n": range(n)})

    assert run(tool_from_function(frame), {"n": 2}).output == "   n\n0  0\n1  1"


def test_runner_exception_becomes_error():
    def boom(x: int) -> int:
        """Fail."""
        raise ValueError(f"bad x: {x}")

    outcome = run(tool_from_function(boom), {"x": 3})
    assert outcome.status == "error"
    assert outcome.output is None
    assert outcome.error_message == "ValueError: bad x: 3"


def test_runner_tool_raising_timeout_error_is_an_error_not_a_timeout():
    def flaky(x: int) -> int:
        """Time out on its own."""
        raise TimeoutError("upstream took too long")

    outcome = run(tool_from_function(flaky), {"x": 1}, timeout=5)
    assert (outcome.status, outcome.error_message) == ("error", "TimeoutError: upstream took too long")


def test_runner_timeout():
    release = threading.Event()
    returned = threading.Event()

    def slow(x: int) -> int:
        """Block until released (never, before the timeout)."""
        release.wait(120)
        returned.set()
        return x

    try:
        outcome = run(tool_from_function(slow), {"x": 1}, timeout=0.2)
        assert outcome.status == "timeout"
        assert outcome.output is None
        assert outcome.error_message == "no result after 0.2 s; the call was abandoned"
        assert not returned.is_set()  # did not wait for the abandoned thread
    finally:
        release.set()

    async def aslow(x: int) -> int:
        """Wait for an event nobody sets (cancelled by the timeout)."""
        await asyncio.Event().wait()
        return x

    assert run(tool_from_function(aslow), {"x": 1}, timeout=0.2).status == "timeout"


def test_runner_bad_arguments():
    spec = tool_from_function(search_docs)
    outcome = run(spec, {"query": "x", "limit": "many"})
    assert outcome.status == "error"
    assert outcome.error_message.startswith("invalid arguments for tool 'search_docs': 'limit': Input should be a valid integer")
    assert "(got 'many')" in outcome.error_message
    assert run(spec, {}).error_message == "invalid arguments for tool 'search_docs': missing required argument 'query'"
    assert run(spec, {"query": "x", "lmit": 3}).error_message == (
        "invalid arguments for tool 'search_docs': unexpected argument 'lmit' (it takes: query, limit, kind)"
    )
    assert run(spec, {"query": "x", "kind": "blog"}).status == "error"


def test_runner_truncates_long_output():
    def long_text(n: int) -> str:
        """Many characters."""
        return "x" * n

    spec = tool_from_function(long_text)
    out = run(spec, {"n": 10_000}).output
    assert out == "x" * 8000 + "\n[truncated 2000 chars]"
    assert run(spec, {"n": 100}, max_output_chars=30).output == "x" * 30 + "\n[truncated 70 chars]"
    assert run(spec, {"n": 8000}).output == "x" * 8000


def test_runner_runs_calls_in_parallel():
    # Every call waits until all three have started: only calls that run at the same
    # time get past the barrier (its timeout is a safety net, not the test).
    all_running = threading.Barrier(3, timeout=60)

    def wait(label: str) -> str:
        """Wait for the others."""
        all_running.wait()
        return label

    async def wait_async(label: str) -> str:
        """Wait for the others, async (off the event loop)."""
        await asyncio.get_running_loop().run_in_executor(None, all_running.wait)
        return label

    sync_spec, async_spec = tool_from_function(wait), tool_from_function(wait_async)

    async def main():
        return await asyncio.gather(
            run_tool_call(sync_spec, {"label": "a"}, timeout=10),
            run_tool_call(sync_spec, {"label": "b"}, timeout=10),
            run_tool_call(async_spec, {"label": "c"}, timeout=10),
        )

    outcomes = asyncio.run(main())
    # all three passed the barrier: each started before any of them finished
    assert [o.output for o in outcomes] == ["a", "b", "c"]


def test_runner_lets_cancellation_through():
    started, release = threading.Event(), threading.Event()

    def slow(x: int) -> int:
        """Block until released (after the cancel)."""
        started.set()
        release.wait(120)
        return x

    spec = tool_from_function(slow)

    async def main():
        task = asyncio.ensure_future(run_tool_call(spec, {"x": 1}, timeout=120))
        assert await asyncio.get_running_loop().run_in_executor(None, started.wait, 60)
        task.cancel()
        await task

    try:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(main())
    finally:
        release.set()


def test_runner_tool_exception_message_is_shown_alone():
    from langchain_core.tools import ToolException

    def picky(x: int) -> int:
        """Refuse."""
        raise ToolException("x must be even; try 4")

    assert run(tool_from_function(picky), {"x": 3}).error_message == "x must be even; try 4"
