"""MCP both ways: an agent's MCP servers (add, list, tools, remove, import), and ``mcp serve``.

In a notebook the commands work on the current agent
(``%agent mcp add demo -- python server.py``); the CLI names the agent first
(``agentnb mcp add calc demo -- python server.py``). Everything after ``--``
is the server's command line, as typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ..errors import UserError
from ..render.results import Notice, Stack, Table
from ..text import shorten
from .base import Args, Argv, Context, Flag, Opt, Pos, command

if TYPE_CHECKING:  # pragma: no cover
    from ..agent import Agent

#: The agent: named in the CLI, the current one in a notebook.
McpAgent = Annotated[str | None, Pos("AGENT", "the agent whose MCP servers these are",
                                     fronts=("cli",), required_in=("cli",))]
ServerName = Annotated[str, Pos("SERVER", "the server's name (its tools are SERVER_TOOL)")]

ADD_EPILOG = """
A stdio server is started by agentnb (the words after -- are its command line);
an HTTP server is reached at --url (streamable HTTP). Secrets are never stored:
--env NAME passes agentnb's variable NAME to the server when it starts
(--env NAME=VAR: the server's NAME is agentnb's VAR), --header NAME=VAR sends
VAR's value (NAME=Bearer:VAR: "Bearer <value>"). The tools appear as
SERVER_TOOL, with the server's descriptions and schemas.
"""


def _agent(ctx: Context, name: str | None, command_id: str) -> "Agent":
    return ctx.agent(name, command_id=command_id)


def _server_row(name: str, config) -> list:
    approval = "every call" if config.approve else (", ".join(config.approve_tools) or None)
    secrets = ([f"{k}=${v}" for k, v in config.env.items()]
               + [f"{k}: {v}" for k, v in config.headers.items()])
    return [name, config.transport, shorten(config.describe(), 70),
            ", ".join(secrets) or None, approval]


def _server_json(name: str, config) -> dict:
    return {"name": name, **config.model_dump(mode="json")}


class AddArgs(Args):
    agent: McpAgent = None
    server: ServerName
    server_command: Annotated[list[str], Argv("COMMAND", "the command that starts a stdio "
                                              "server, and its arguments")] = []
    url: Annotated[str | None, Opt("--url", metavar="URL",
                                   help="a streamable-HTTP server's URL (instead of a "
                                        "command)")] = None
    env: Annotated[list[str], Opt("--env", "-e", metavar="NAME",
                                  help="pass this environment variable to the server "
                                       "(NAME or NAME=VAR; repeatable)")] = []
    header: Annotated[list[str], Opt("--header", metavar="NAME=VAR",
                                     help="send this header, its value from environment "
                                          "variable VAR (repeatable)")] = []
    approve: Annotated[bool, Flag("--approve", help="ask before every call of this server's "
                                  "tools")] = False
    approve_tool: Annotated[list[str], Opt("--approve-tool", metavar="TOOL",
                                           help="ask before each call of this tool "
                                                "(repeatable)")] = []
    replace: Annotated[bool, Flag("--replace", help="change a server the agent already "
                                  "has")] = False


def _trailing_env(words: list[str]) -> tuple[list[str], list[str]]:
    """``-- python server.py --env NAME``: trailing ``--env NAME`` pairs are agentnb's."""
    words, env = list(words), []
    while len(words) >= 3 and words[-2] == "--env":
        env.insert(0, words.pop())
        words.pop()
    return words, env


@command("mcp add", "give an agent an MCP server (stdio command or --url)", writes=True,
         epilog=ADD_EPILOG,
         examples=("{prog} demo -- python demo_server.py",
                   "{prog} docs --url http://127.0.0.1:8000/mcp --header "
                   "Authorization=Bearer:DOCS_TOKEN",
                   "{prog} gh --env GITHUB_TOKEN --approve -- npx -y @modelcontextprotocol/"
                   "server-github"))
def add(ctx: Context, args: AddArgs) -> Notice:
    agent = _agent(ctx, args.agent, "mcp add")
    words, env = _trailing_env(args.server_command)
    config = agent.mcp.add(
        args.server, command=words or None, env=list(args.env) + env, url=args.url,
        headers=args.header, approve=args.approve, approve_tools=args.approve_tool,
        replace=args.replace)
    hint = ctx.spell("mcp tools", (agent.name + " " if ctx.front == "cli" else "") + args.server)
    return Notice(f"{agent.name!r} can now use the tools of MCP server {args.server!r} "
                  f"({shorten(config.describe(), 80)}); they start on first use (see {hint})",
                  "success", data={"agent": agent.name, **_server_json(args.server, config)})


class ListArgs(Args):
    agent: McpAgent = None


@command("mcp list", "an agent's MCP servers (nothing is started)")
def list_servers(ctx: Context, args: ListArgs) -> Table:
    agent = _agent(ctx, args.agent, "mcp list")
    servers = agent.mcp.list()
    example = ctx.spell("mcp add", ("AGENT " if ctx.front == "cli" else "")
                        + "SERVER -- COMMAND")
    return Table(["server", "transport", "command or URL", "environment", "asks approval"],
                 [_server_row(n, c) for n, c in servers.items()],
                 title=f"MCP servers of {agent.name}", empty=f"(no MCP servers: {example})",
                 data=[_server_json(n, c) for n, c in servers.items()])


class ToolsArgs(Args):
    agent: McpAgent = None
    server: Annotated[str | None, Pos("SERVER", "only this server's tools")] = None


@command("mcp tools", "the tools of an agent's MCP servers (starts them)")
def tools(ctx: Context, args: ToolsArgs) -> Table:
    agent = _agent(ctx, args.agent, "mcp tools")
    found = agent.mcp.tools(args.server)
    title = f"tools of MCP server {args.server}" if args.server else \
        f"MCP tools of {agent.name}"
    return Table(["tool", "server", "asks approval", "description"],
                 [[t.name, t.server, t.requires_approval, shorten(t.description, 70)]
                  for t in found], title=title, empty="(the server has no tools)",
                 data=[t.model_dump() for t in found])


class RemoveArgs(Args):
    agent: McpAgent = None
    server: ServerName


@command("mcp remove", "take an MCP server from an agent", writes=True)
def remove(ctx: Context, args: RemoveArgs) -> Notice:
    agent = _agent(ctx, args.agent, "mcp remove")
    config = agent.mcp.remove(args.server)
    return Notice(f"removed MCP server {args.server!r} from {agent.name!r}", "success",
                  data={"agent": agent.name, **_server_json(args.server, config)})


class ImportArgs(Args):
    agent: McpAgent = None
    file: Annotated[str, Field(min_length=1),
                    Pos("FILE", "a JSON file with {\"mcpServers\": {...}} (Claude Desktop, "
                        "notebook-intelligence, Cursor format)")]
    replace: Annotated[bool, Flag("--replace", help="change servers the agent already "
                                  "has")] = False


@command("mcp import", "add the servers of an mcpServers JSON file (literal secrets refused)",
         writes=True)
def import_servers(ctx: Context, args: ImportArgs) -> Notice | Stack:
    agent = _agent(ctx, args.agent, "mcp import")
    result = agent.mcp.import_file(args.file, replace=args.replace)
    data = {"agent": agent.name, **result.model_dump()}
    if result.added:
        head = Notice(f"{agent.name!r} now has MCP server{'s' if len(result.added) > 1 else ''} "
                      f"{', '.join(result.added)}", "success")
    else:
        head = Notice(f"no MCP server imported into {agent.name!r}", "info")
    if not result.warnings:
        head.data = data
        return head
    return Stack(head, *(Notice(w, "warning") for w in result.warnings), data=data)


# -- agentnb mcp serve --------------------------------------------------------------------
@dataclass(frozen=True)
class ServePlan:
    """What ``agentnb mcp serve`` serves; the CLI runs it (a server runs until stopped)."""

    agents: tuple[str, ...]
    http: bool
    host: str
    port: int


class ServeArgs(Args):
    agents: Annotated[str | None, Opt("--agents", metavar="A,B",
                                      help="serve only these agents (default: all)")] = None
    http: Annotated[bool, Flag("--http", help="serve streamable HTTP (with API keys) instead "
                               "of stdio")] = False
    host: Annotated[str, Opt("--host", metavar="HOST", help="the address for --http")] = \
        "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535),
                    Opt("--port", metavar="PORT", help="the port for --http")] = 8765


SERVE_EPILOG = """
Tools: chat, list_agents, list_sessions, get_session, search_history and
query_history (read-only SQL, with the guard of the model's query_store tool;
not offered with --agents, since SQL reads every agent's rows). Over --http
every request needs "Authorization: Bearer KEY", an API key of the store
(agentnb keys create AGENT; an admin key for every agent and query_history).
"""


@command("mcp serve", "serve the store's agents and history over MCP (stdio, or --http)",
         fronts=("cli",), epilog=SERVE_EPILOG,
         examples=("{prog}", "{prog} --agents calc,helper", "{prog} --http --port 8765"))
def serve(ctx: Context, args: ServeArgs) -> ServePlan:
    """Checks the agents named; the CLI then runs the server."""
    names = tuple(a.strip() for a in (args.agents or "").split(",") if a.strip())
    if args.agents is not None and not names:
        raise UserError("--agents: give agent names separated by commas")
    for name in names:
        ctx.store.get_agent(name)  # an unknown name is one line, with a close match
    return ServePlan(agents=names, http=args.http, host=args.host, port=args.port)


__all__ = ["ServePlan"]
