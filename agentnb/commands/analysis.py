"""Looking at the history: usage figures and read-only SQL."""

from __future__ import annotations

from typing import Annotated, Any

from ..errors import UserError
from ..render.results import BarChart, Result, Stack, Table, format_cell, to_jsonable
from ..text import short_id
from .base import Args, Context, Opt, Rest, command
from .options import UsageBy


class UsageArgs(Args):
    by: Annotated[UsageBy, Opt("--by", metavar="GROUP", help="group by")] = "agent"
    agent: Annotated[str | None, Opt("--agent", metavar="NAME", help="only this agent")] = None


@command("usage", "tokens and tool calls by agent, session, model, day or user (who started "
         "the session)", aliases=("usage",))
def usage(ctx: Context, args: UsageArgs) -> Any:
    rows = ctx.store.usage(args.by, agent=args.agent)
    keys = [short_id(r.key) if args.by == "session" else (r.key or "(none)") for r in rows]
    table = Table(
        [args.by, "turns", "messages", "input tokens", "output tokens", "tool calls"],
        [[k, r.turns, r.messages, r.input_tokens, r.output_tokens, r.tool_calls]
         for k, r in zip(keys, rows)],
        title=f"usage by {args.by}" + (f" ({args.agent})" if args.agent else ""),
        empty="(no usage yet)",
        data=[{"by": args.by, **r.model_dump()} for r in rows],
    )
    if args.by != "day" or not rows:
        return table
    chart = BarChart(keys, [r.input_tokens + r.output_tokens for r in rows],
                     title="tokens per day", unit="tokens")
    return Stack(table, chart, data=table.to_json())


class SqlResult(Result):
    """The rows of a query: a DataFrame in a notebook, a table in a terminal, JSON."""

    def __init__(self, columns: list[str], rows: list[tuple]) -> None:
        self.columns = columns
        self.rows = rows

    def table(self) -> Table:
        return Table(self.columns, [list(r) for r in self.rows],
                     empty="(no rows)", title=f"{len(self.rows):,} row"
                     f"{'s' if len(self.rows) != 1 else ''}")

    def to_text(self) -> str:
        return self.table().to_text()

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def to_json(self) -> Any:
        return [to_jsonable(dict(zip(self.columns, r))) for r in self.rows]

    def to_frame(self) -> Any:
        """The rows as a pandas DataFrame (what ``df = %agent sql ...`` holds)."""
        try:
            import pandas as pd
        except ImportError:
            raise UserError("a DataFrame needs pandas: pip install 'agentnb[pandas]'") from None
        return pd.DataFrame.from_records(self.rows, columns=self.columns)


SQL_EPILOG = """
tables: agents, sessions, messages, tool_calls, api_keys (read-only)
example: df = %agent sql select role, count(*) as n from messages group by role
"""


class SqlArgs(Args):
    query: Annotated[str | None, Rest("SELECT ...", "one read-only SQL statement")] = None


@command("sql", "query the store (read-only); in a notebook the result is a DataFrame",
         aliases=("sql",), epilog=SQL_EPILOG)
def sql(ctx: Context, args: SqlArgs) -> SqlResult:
    if not args.query or not args.query.strip():
        raise UserError(f"give a query: {ctx.spell('sql', 'SELECT ...')}")
    columns, rows = ctx.store.sql_rows(args.query)
    return SqlResult(columns, rows)


__all__ = ["SqlResult", "format_cell"]
