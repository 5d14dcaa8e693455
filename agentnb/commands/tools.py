"""Tools: what an agent can call, and making notebook functions tools."""

from __future__ import annotations

from typing import Annotated

from ..errors import UserError
from ..render.results import Notice, Table
from ..text import did_you_mean, shorten
from .base import Args, Context, Flag, Pos, command
from .options import AgentName


class ListArgs(Args):
    agent: AgentName = None


@command("tools list", "an agent's tools and whether this process can run each",
         aliases=("tools",))
def list_tools(ctx: Context, args: ListArgs) -> Table:
    agent = ctx.agent(args.agent, command_id="tools list").refresh()
    runtime = ctx.store.runtime
    rows, data = [], []
    for name in agent.config.tools:
        spec = runtime.resolve_tool(name)
        if spec is None:
            where = ("not defined in this kernel" if ctx.front == "notebook"
                     else "not available here (a notebook function?)")
            rows.append([name, where, None, None])
            data.append({"name": name, "available": False})
        else:
            rows.append([name, spec.source, spec.requires_approval,
                         shorten(spec.description, 60)])
            data.append({"name": name, "available": True, "source": spec.source,
                         "requires_approval": spec.requires_approval,
                         "description": spec.description})
    for server, config in agent.config.mcp_servers.items():
        # listed without starting the server (mcp tools SERVER starts it and lists each tool)
        approval = True if config.approve else (", ".join(config.approve_tools) or False)
        rows.append([f"{server}_*", f"mcp: {server}", approval,
                     f"the tools of MCP server {server} (see mcp tools)"])
        data.append({"name": f"{server}_*", "available": True, "source": "mcp",
                     "server": server, "requires_approval": approval})
    hint = (f"(no tools: {ctx.spell('tools add', 'FUNC')})" if ctx.front == "notebook"
            else f"(no tools: {ctx.spell('agents update', agent.name + ' tools=a,b')})")
    return Table(["tool", "source", "asks approval", "description"], rows,
                 title=f"tools of {agent.name}", empty=hint, data=data)


class AddArgs(Args):
    functions: Annotated[list[str], Pos("FUNC", "notebook functions (documented, annotated)")]
    approve: Annotated[bool, Flag("--approve", help="ask before each call of these tools")] = False


ADD_EPILOG = """
A tool is a function with a docstring and type hints on its parameters:

    def add(a: int, b: int) -> int:
        "Add two integers."
        return a + b

    %agent tool add
"""


@command("tools add", "make notebook functions tools of the current agent", aliases=("tool",),
         fronts=("notebook",), writes=True, epilog=ADD_EPILOG)
def add(ctx: Context, args: AddArgs) -> Notice:
    ns = ctx.namespace or {}
    for name in args.functions:
        if name not in ns:
            functions = [k for k, v in ns.items() if callable(v) and not k.startswith("_")]
            hint = did_you_mean(name, functions)
            raise UserError(f"no function named {name!r} in the notebook"
                            + (f"; did you mean {hint!r}?" if hint else
                               "; define it in a cell first"))
        if not callable(ns[name]):
            raise UserError(f"{name!r} is not a function; a tool is a function with a docstring")
    registry = ctx.store.tools
    names = [registry.register(ns[n], requires_approval=args.approve).name
             for n in args.functions]
    current = ctx.state.current()
    if current is None:
        return Notice(f"registered {', '.join(names)} in this notebook; no current agent to give "
                      f"them to ({ctx.spell('agents use', 'NAME')}, then "
                      f"{ctx.spell('tools add', ' '.join(names))} again)", "warning",
                      data={"registered": names, "agent": None})
    tools = current.add_tools(names)
    approve = " (each call asks for approval)" if args.approve else ""
    return Notice(f"{current.name!r} can now use {', '.join(names)}{approve}; its tools: "
                  f"{', '.join(tools)}", "success",
                  data={"registered": names, "agent": current.name, "tools": tools})
