"""One turn with an agent: ``agentnb chat AGENT MESSAGE`` and the ``%%chat`` line.

Both front ends take their arguments from :class:`ChatArgs` (the ``%%chat`` line
is the front end ``cell``: its message is the cell) and the same checks and
session rule, through :func:`plan_turn`; each then runs the turn with its own
view (text printed as it streams, or one notebook output updated in place).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from ..errors import UserError
from .base import Args, Context, Flag, Opt, Pos, command
from .options import MODEL_HELP

if TYPE_CHECKING:  # pragma: no cover
    from ..agent import Agent
    from ..schemas import SessionRecord

CHAT_FRONTS = ("cli", "cell")


class ChatArgs(Args):
    agent: Annotated[str | None, Pos("NAME", "the agent (in a notebook: default the current "
                                     "one; it becomes current)", required_in=("cli",))] = None
    message: Annotated[list[str], Pos("MESSAGE", "the message; - reads it from stdin",
                                      fronts=("cli",), required_in=("cli",))] = []
    session: Annotated[str | None, Opt("--session", "-s", metavar="SESSION",
                                       help="continue this session (id or unique prefix)")] = None
    new: Annotated[bool, Flag("--new", help="start a new session with this turn")] = False
    model: Annotated[str | None, Opt("--model", "-m", metavar="SPEC",
                                     help=MODEL_HELP + "; for this turn only")] = None
    tools: Annotated[bool, Flag("--no-tools", negate=True,
                                help="offer no tools to the model in this turn")] = True
    yes_tools: Annotated[bool, Flag("--yes-tools", fronts=("cli",),
                                    help="run tools that need approval without asking")] = False
    format: Annotated[Literal["markdown", "text", "code", "json"],
                      Opt("--format", metavar="FORMAT", fronts=("cell",),
                          help="how to show the answer; code also puts its code into a new "
                               "cell, json parses it into reply.data")] = "markdown"
    schema_name: Annotated[str | None, Opt("--schema", metavar="NAME", fronts=("cell",),
                                           help="a pydantic model in the notebook; the result "
                                                "is a validated instance")] = None
    stream: Annotated[bool, Flag("--no-stream", negate=True, fronts=("cell",),
                                 help="show the answer once, when it is complete")] = True


@dataclass
class TurnPlan:
    """A checked turn, ready to run: the agent, its session (current now), the options."""

    agent: "Agent"
    session: "SessionRecord"
    model: str | None
    tools: bool

    def missing_tools_note(self, front: str, missing: list[str]) -> str:
        """What to say about tools of the agent this process cannot run, in ``front``'s words."""
        names = ", ".join(missing)
        if front == "cli":
            return (f"tools not available here: {names} (notebook functions run only in the "
                    "kernel that defines them)")
        return (f"tools not available in this kernel: {names} (define them, then "
                f"%agent tool {' '.join(missing)})")


def plan_turn(ctx: Context, args: ChatArgs) -> TurnPlan:
    """The one place that checks a chat's options and picks its session."""
    if args.session and args.new:
        raise UserError("use either --session SESSION or --new, not both")
    if args.model is not None:
        from ..models import parse_model_spec

        parse_model_spec(args.model)
    agent = ctx.agent(args.agent, command_id="chat")
    agent.warn_missing_tools = False  # the front end says it, in its own words
    session = agent.session_for_turn(args.session, new=args.new)
    ctx.state.set_current(agent)
    return TurnPlan(agent=agent, session=session, model=args.model, tools=args.tools)


@command("chat", "send a message to an agent and stream the answer", fronts=CHAT_FRONTS,
         writes=True,
         epilog="The answer streams to stdout; tool calls and the footer go to stderr.\n"
                "MESSAGE '-' reads the message from stdin. The turn continues the agent's "
                "latest session\nunless --new or --session says otherwise.",
         examples=("{prog} calc 'What is add(a=2, b=3)?'",
                   "echo 'Summarise this' | {prog} helper -",
                   "{prog} calc --new 'Start over'"))
def chat(ctx: Context, args: ChatArgs) -> Any:
    """Front ends run turns themselves (see :func:`plan_turn`); this checks and plans it."""
    return plan_turn(ctx, args)


__all__ = ["ChatArgs", "TurnPlan", "plan_turn"]
