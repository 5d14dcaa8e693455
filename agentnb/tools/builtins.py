"""Tools an agent can enable by name: look at the notebook, run Python, query the store.

Each is made by a factory that is given what it needs (the notebook's
namespace, a read-only SQL callable); nothing here is global.
:func:`builtin_tools` returns the ones that can be made from what it is given.

``run_python`` runs code the model wrote, so it needs the user's approval for
each call unless the agent is set to auto-approve. ``query_store`` reads only
the store's own tables: DuckDB can read local files through table functions
and quoted paths, and the model is not the user.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import re
import threading
import traceback
import types
from typing import Any, Callable

from langchain_core.tools import ToolException

from ..errors import UserError
from ..text import close_matches, shorten
from .registry import ToolSpec, tool_from_function

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "builtin_tools",
    "make_describe_variable",
    "make_list_variables",
    "make_query_store",
    "make_run_python",
    "check_store_query",
]

BUILTIN_TOOL_NAMES: tuple[str, ...] = (
    "list_variables", "describe_variable", "run_python", "query_store",
)

SqlRows = Callable[..., "tuple[list[str], list[tuple[Any, ...]]]"]

#: Names IPython (and Python) put in a notebook namespace that are not the user's.
_HIDDEN_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})
_DESCRIBE_LIMIT = 2000
_SUMMARY_WIDTH = 60


# -- the notebook namespace -------------------------------------------------------
def _short(text: str, width: int) -> str:
    return shorten(text, width, ellipsis="...")


def _safe_repr(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__
        text = f"<{type(value).__name__} object; repr failed: {type(exc).__name__}>"
    if len(text) > limit:
        text = text[:limit] + f"... [{len(text) - limit} more chars]"
    return text


def _is_user_variable(name: str, value: Any, module_name: str | None) -> bool:
    if name.startswith("_") or name in _HIDDEN_NAMES:
        return False
    if isinstance(value, types.ModuleType):
        return False
    if isinstance(value, (types.FunctionType, type)):
        # functions and classes defined in the notebook, not imported ones
        if module_name is None:
            return True
        return getattr(value, "__module__", None) in {None, module_name, "__main__"}
    if isinstance(value, (types.BuiltinFunctionType, types.MethodWrapperType)):
        return False
    # typing constructs and the like brought in by imports
    if type(value).__module__ == "typing":
        return False
    return True


def _signature(fn: Any) -> str:
    """``fn``'s signature with string annotations resolved where they can be."""
    for eval_str in (True, False):
        try:
            return str(inspect.signature(fn, eval_str=eval_str))
        except Exception:
            continue
    return "(...)"


def _kind(value: Any) -> str:
    if isinstance(value, types.FunctionType):
        return "async function" if inspect.iscoroutinefunction(value) else "function"
    if isinstance(value, type):
        return "class"
    return type(value).__name__


def _summary(value: Any) -> str:
    """Shape for frames and arrays, length for containers, a short repr otherwise."""
    try:
        return _summary_of(value)
    except Exception:  # an odd object (a property that raises, a broken __len__)
        return _short(_safe_repr(value, 200), _SUMMARY_WIDTH)


def _summary_of(value: Any) -> str:
    if isinstance(value, (types.FunctionType, type)):
        signature = _signature(value)
        doc = (inspect.getdoc(value) or "").strip().splitlines()
        first = f" - {doc[0]}" if doc else ""
        return _short(f"{value.__name__}{signature}{first}", _SUMMARY_WIDTH + 20)
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and not isinstance(value, type):
        parts = [f"shape {shape}"]
        if hasattr(value, "columns") and len(shape) == 2:
            cols = [str(c) for c in list(value.columns)[:8]]
            more = ", ..." if len(value.columns) > 8 else ""
            parts.append(f"columns: {', '.join(cols)}{more}")
        elif getattr(value, "dtype", None) is not None:
            parts.append(f"dtype {value.dtype}")
        return _short("; ".join(parts), _SUMMARY_WIDTH + 20)
    if isinstance(value, (str, bytes)):
        return _short(f"len {len(value)}: {_safe_repr(value, 200)}", _SUMMARY_WIDTH)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return _short(f"len {len(value)}: {_safe_repr(value, 200)}", _SUMMARY_WIDTH)
    return _short(_safe_repr(value, 200), _SUMMARY_WIDTH)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _user_names(namespace: dict[str, Any]) -> list[str]:
    module_name = namespace.get("__name__")
    return [n for n, v in list(namespace.items()) if _is_user_variable(n, v, module_name)]


def make_list_variables(namespace: dict[str, Any]) -> ToolSpec:
    """The ``list_variables`` tool over ``namespace`` (the notebook's ``user_ns``)."""

    def list_variables() -> str:
        """List the notebook's variables: name, type and a short summary (shape, length or value).

        Names starting with '_' and imported modules are not shown. Use
        describe_variable for a closer look at one of them.
        """
        names = sorted(_user_names(namespace), key=str.lower)
        if not names:
            return "The notebook has no user variables yet."
        rows = [[n, _kind(namespace[n]), _summary(namespace[n])] for n in names]
        return _table(["name", "type", "summary"], rows)

    return _builtin(list_variables)


def _describe(name: str, value: Any) -> str:
    kind = type(value)
    lines = [f"{name}: {kind.__module__}.{kind.__qualname__}" if kind.__module__ != "builtins"
             else f"{name}: {kind.__qualname__}"]
    if isinstance(value, (types.FunctionType, type)):
        lines.append(f"signature: {value.__name__}{_signature(value)}")
        doc = inspect.getdoc(value)
        lines.append(f"docstring:\n{doc}" if doc else "docstring: (none)")
        return "\n".join(lines)
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        lines.append(f"shape: {shape}")
    dtypes = getattr(value, "dtypes", None)
    if hasattr(value, "columns") and dtypes is not None and hasattr(dtypes, "items"):
        lines.append("columns (dtype):")
        items = list(dtypes.items())
        width = max((len(str(c)) for c, _ in items[:50]), default=0)
        lines += [f"  {str(c).ljust(width)}  {t}" for c, t in items[:50]]
        if len(items) > 50:
            lines.append(f"  ... and {len(items) - 50} more columns")
    elif getattr(value, "dtype", None) is not None:
        lines.append(f"dtype: {value.dtype}")
    head = getattr(value, "head", None)
    if callable(head) and type(value).__module__.startswith("pandas"):
        try:
            text = head().to_string()
        except Exception:
            text = _safe_repr(value, _DESCRIBE_LIMIT)
        lines.append(f"head:\n{_cut(text)}")
        return "\n".join(lines)
    if not isinstance(shape, tuple):
        try:
            lines.append(f"len: {len(value)}")
        except Exception:
            pass
    lines.append(f"value:\n{_safe_repr(value, _DESCRIBE_LIMIT)}")
    return "\n".join(lines)


def _cut(text: str, limit: int = _DESCRIBE_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n[truncated {len(text) - limit} chars]"


def make_describe_variable(namespace: dict[str, Any]) -> ToolSpec:
    """The ``describe_variable`` tool over ``namespace``."""

    def describe_variable(name: str) -> str:
        """Describe one notebook variable: type, shape, columns and dtypes, first rows or value.

        Args:
            name: the variable's name, as list_variables shows it
        """
        module_name = namespace.get("__name__")
        if name not in namespace or not _is_user_variable(name, namespace[name], module_name):
            known = sorted(_user_names(namespace), key=str.lower)
            close = close_matches(name, known)
            message = f"no notebook variable named {name!r}"
            if close:
                message += f"; did you mean {', '.join(repr(c) for c in close)}?"
            elif known:
                shown = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
                message += f"; the variables are: {shown}"
            else:
                message += "; the notebook has no user variables yet"
            raise ToolException(message)
        try:
            return _describe(name, namespace[name])
        except Exception as exc:  # an odd object: say what we can
            return (f"{name}: {type(namespace[name]).__qualname__}\n"
                    f"(could not describe it: {type(exc).__name__}: {exc})\n"
                    f"value:\n{_safe_repr(namespace[name], _DESCRIBE_LIMIT)}")

    return _builtin(describe_variable)


# -- running Python --------------------------------------------------------------
_CODE_FILENAME = "<agent-code>"


def _traceback_tail(exc: BaseException, max_lines: int = 12) -> str:
    """The traceback of ``exc`` without our own frames, its last ``max_lines`` lines."""
    if isinstance(exc, SyntaxError):
        lines = traceback.format_exception_only(type(exc), exc)
    else:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != _CODE_FILENAME:
            tb = tb.tb_next  # skip run_python's own frames
        lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
    text = "".join(lines).rstrip().splitlines()
    return "\n".join(text[-max_lines:])


class _ThreadRoutedStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: writes from a capturing thread go to its buffer.

    Every other thread keeps writing to the stream that was there before, so
    the notebook's own output is never swallowed, and parallel runs do not mix.
    """

    def __init__(self, fallback: Any, buffers: dict[int, io.StringIO]) -> None:
        self.fallback = fallback
        self._buffers = buffers

    def _target(self) -> Any:
        return self._buffers.get(threading.get_ident(), self.fallback)

    def write(self, text: str) -> int:  # type: ignore[override]
        return self._target().write(text)

    def flush(self) -> None:
        target = self._target()
        if hasattr(target, "flush"):
            target.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...
        return getattr(self.fallback, name)


class _OutputCapture:
    """Capture what one thread prints (sys.stdout and sys.stderr are process-wide)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[int, io.StringIO] = {}
        self._active = 0
        self._saved: tuple[Any, Any] | None = None

    @contextlib.contextmanager
    def __call__(self, buffer: io.StringIO):
        import sys

        ident = threading.get_ident()
        with self._lock:
            if self._active == 0:
                self._saved = (sys.stdout, sys.stderr)
                sys.stdout = _ThreadRoutedStream(sys.stdout, self._buffers)
                sys.stderr = _ThreadRoutedStream(sys.stderr, self._buffers)
            self._active += 1
            self._buffers[ident] = buffer
        try:
            yield buffer
        finally:
            with self._lock:
                self._buffers.pop(ident, None)
                self._active -= 1
                if self._active == 0 and self._saved is not None:
                    # put the old streams back unless someone else replaced ours meanwhile
                    if isinstance(sys.stdout, _ThreadRoutedStream):
                        sys.stdout = self._saved[0]
                    if isinstance(sys.stderr, _ThreadRoutedStream):
                        sys.stderr = self._saved[1]
                    self._saved = None


#: sys.stdout is one per process, so is its router.
_capture_output = _OutputCapture()


def make_run_python(namespace: dict[str, Any]) -> ToolSpec:
    """The ``run_python`` tool: code runs with ``namespace`` as its globals. Needs approval."""

    def run_python(code: str) -> str:
        """Run Python code in the notebook's namespace, like a cell.

        Returns what the code printed and the value of its last expression.

        Variables it defines stay in the notebook. Use print() for intermediate results.

        Args:
            code: Python source code to run
        """
        try:
            tree = ast.parse(code, filename=_CODE_FILENAME, mode="exec")
        except SyntaxError as exc:
            raise ToolException(_traceback_tail(exc)) from None
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        value = None
        with _capture_output(io.StringIO()) as out:
            try:
                # dont_inherit: this module's `from __future__` imports are not the agent's
                exec(compile(tree, _CODE_FILENAME, "exec", dont_inherit=True), namespace)
                if last is not None:
                    expression = compile(last, _CODE_FILENAME, "eval", dont_inherit=True)
                    value = eval(expression, namespace)
            except (Exception, SystemExit) as exc:
                printed = out.getvalue()
                prefix = ""
                if printed.strip():
                    prefix = f"output before the error:\n{_cut(printed.rstrip())}\n\n"
                raise ToolException(prefix + _traceback_tail(exc)) from None
        parts = []
        printed = out.getvalue()
        if printed:
            parts.append(printed.rstrip("\n"))
        if value is not None:
            parts.append(_safe_repr(value, 20_000))
        return "\n".join(parts) if parts else "(no output)"

    return _builtin(run_python, requires_approval=True)


# -- the store -------------------------------------------------------------------
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
#: Table functions that read nothing outside the query.
_ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
#: Scalar functions that reach outside the store.
_DENIED_FUNCTIONS = frozenset({"getenv", "set_config", "current_setting"})
#: ... and on PostgreSQL whole families: the server's files and settings (pg_read_file,
#: pg_ls_dir, pg_stat_file, ...), large objects (lo_import/lo_export), other databases
#: (dblink) and functions that run SQL given as text (query_to_xml).
_DENIED_PREFIXES = ("pg_", "lo_", "dblink", "query_to_", "cursor_to_", "database_to_",
                    "schema_to_", "table_to_")
_MAX_ROWS = 50
_CELL_WIDTH = 80

STORE_TABLES_HELP = (
    "Tables: agents (id, name, description, config JSON, template, created_at, updated_at); "
    "sessions (id, agent_id, user_id, title, attrs JSON, created_at, updated_at); "
    "messages (id, session_id, position, role, content, attrs, input_tokens, output_tokens, "
    "tokens_used, model, status, created_at); tool_calls (id, message_id, tool_name, "
    "input_args JSON, output, status, error_message, execution_time_ms, created_at, updated_at); "
    "api_keys (id, agent_id, name, key_prefix, is_active, created_at, last_used_at)."
)


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from _walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def check_store_query(sql: str) -> None:
    """Refuse SQL that is not one plain SELECT over the store's own tables.

    DuckDB's parser gives the statement's tree (``json_serialize_sql``); the
    check rejects other statements (ATTACH, COPY, INSTALL, LOAD, SET, PRAGMA,
    writes, ...), table functions outside a small allowlist (``read_csv``,
    ``read_text``, ``glob``, ``query``, ...), tables named by a path or a file
    name (``FROM '/etc/passwd'``, ``FROM 'x.csv'``) and functions that reach
    outside (``getenv``). Raises :class:`ToolException` with the reason.
    """
    import duckdb

    if not sql or not sql.strip():
        raise ToolException("no SQL given")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ToolException(f"SQL error: {str(exc).strip().splitlines()[0]}") from None
    if len(statements) != 1:
        raise ToolException("one SQL statement at a time, please")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        name = str(kind).rsplit(".", 1)[-1]
        raise ToolException(f"only SELECT queries are allowed here, not {name} statements")
    with duckdb.connect(":memory:") as con:
        raw = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0]
    tree = json.loads(raw)
    if tree.get("error"):
        message = tree.get("error_message") or "the query cannot be checked"
        if tree.get("error_type") == "not implemented":
            raise ToolException("only SELECT queries are allowed here")
        raise ToolException(f"SQL error: {message}")
    for node in _walk(tree.get("statements", [])):
        node_type = node.get("type")
        if node_type == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            fn_name = str(fn.get("function_name", "")).lower()
            if fn_name not in _ALLOWED_TABLE_FUNCTIONS or fn.get("schema") or fn.get("catalog"):
                raise ToolException(
                    f"table function {fn_name}() is not allowed: query_store reads only the "
                    "store's own tables (no files, URLs or other databases)"
                )
        elif node_type in ("BASE_TABLE", "SHOW_REF"):
            for key in ("table_name", "schema_name", "catalog_name"):
                part = _unquote(str(node.get(key) or ""))
                if part and not _PLAIN_NAME.match(part):
                    raise ToolException(
                        f"{part!r} is not a table of the store: query_store reads only the store's "
                        "own tables, never files or URLs"
                    )
        elif node.get("class") == "FUNCTION":
            fn_name = str(node.get("function_name", "")).lower()
            if fn_name in _DENIED_FUNCTIONS or fn_name.startswith(_DENIED_PREFIXES):
                raise ToolException(f"function {fn_name}() is not allowed in query_store")


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value).replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 3] + "..."


def make_query_store(sql_rows: SqlRows) -> ToolSpec:
    """The ``query_store`` tool over ``sql_rows(query, limit)`` (e.g. ``Store.sql_rows``)."""

    def query_store(sql: str) -> str:
        """Run one read-only SQL SELECT over the agent store (DuckDB dialect).

        Returns up to 50 rows as a text table.

        TABLES_HELP

        Args:
            sql: one SELECT statement (WITH, DESCRIBE and SUMMARIZE work too)
        """
        sql = sql.strip().rstrip(";").strip()
        check_store_query(sql)
        try:
            columns, rows = sql_rows(sql, _MAX_ROWS + 1)
        except UserError as exc:  # the store's own one-line message ("SQL error: ...")
            raise ToolException(str(exc)) from None
        cut_note = ""
        if len(rows) > _MAX_ROWS:
            rows = rows[:_MAX_ROWS]
            try:
                _, counted = sql_rows(f"SELECT count(*) FROM ({sql}) AS agentnb_q", None)
                total = int(counted[0][0])
                cut_note = (f"\n[{total - _MAX_ROWS} more rows not shown; {total} in all"
                            " - add a LIMIT or aggregate]")
            except Exception:
                cut_note = f"\n[more rows not shown; only the first {_MAX_ROWS} are listed]"
        if not columns:
            return "(the statement returned no columns)"
        if not rows:
            return _table([str(c) for c in columns], []) + "\n(0 rows)"
        body = _table([str(c) for c in columns], [[_cell(v) for v in r] for r in rows])
        count = f"({len(rows)} row{'s' if len(rows) != 1 else ''})" if not cut_note else ""
        return body + ("\n" + count if count else "") + cut_note

    query_store.__doc__ = (query_store.__doc__ or "").replace("TABLES_HELP", STORE_TABLES_HELP)
    return _builtin(query_store)


# -- all of them -----------------------------------------------------------------
def _builtin(fn: Callable[..., Any], *, requires_approval: bool = False) -> ToolSpec:
    spec = tool_from_function(fn, requires_approval=requires_approval)
    return spec.model_copy(update={"source": "builtin"})


def builtin_tools(
    *,
    namespace: dict[str, Any] | None = None,
    sql_rows: SqlRows | None = None,
) -> dict[str, ToolSpec]:
    """The built-in tools that can be made from what is given, by name.

    ``namespace`` (the notebook's ``user_ns``) gives ``list_variables``,
    ``describe_variable`` and ``run_python`` (which needs approval);
    ``sql_rows`` (``Store.sql_rows``) gives ``query_store``.
    """
    tools: dict[str, ToolSpec] = {}
    if namespace is not None:
        for factory in (make_list_variables, make_describe_variable, make_run_python):
            spec = factory(namespace)
            tools[spec.name] = spec
    if sql_rows is not None:
        spec = make_query_store(sql_rows)
        tools[spec.name] = spec
    return tools
