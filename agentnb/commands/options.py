"""Arguments several commands share, declared once so a flag means the same everywhere.

Each is an ``Annotated`` type to use as a field of a command's arguments::

    class ShowArgs(Args):
        name: AgentName = None
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..schemas import NAME_RULE
from .base import Flag, Opt, Pos

#: The most rows a listing returns (bigger numbers are a clear error, not a traceback).
MAX_LIMIT = 1_000_000

MODEL_HELP = "model spec, e.g. offline or openai:gpt-4o-mini (see models)"

#: An agent's name; in the notebook it defaults to the current agent.
AgentName = Annotated[
    str | None,
    Pos("NAME", "the agent (in a notebook: default the current agent)", required_in=("cli",)),
]
#: An agent to filter by: ``[NAME]`` or ``--agent NAME``.
AgentFilter = Annotated[
    str | None, Pos("NAME", "only this agent's", also="--agent"),
]
#: The name of a new agent.
NewAgentName = Annotated[str, Pos("NAME", f"the agent's name: {NAME_RULE}")]
ModelSpec = Annotated[str | None, Opt("--model", "-m", metavar="SPEC", help=MODEL_HELP)]
SessionId = Annotated[
    str | None,
    Pos("SESSION", "a session id or a unique prefix of it (in a notebook: default the "
        "current session)", required_in=("cli",)),
]
Limit = Annotated[
    int | None,
    Field(ge=1, le=MAX_LIMIT),
    Opt("--limit", "-n", metavar="N", help="at most N, newest first"),
]
Yes = Annotated[bool, Flag("--yes", "-y", help="do not ask for confirmation")]
ExportFormat = Annotated[Literal["md", "json"], Opt("--format", "-f", metavar="FORMAT",
                                                    help="md or json")]
OutputFile = Annotated[
    str | None, Opt("--output", "-o", metavar="FILE", help="write to FILE instead of showing it"),
]
UsageBy = Literal["agent", "session", "model", "day", "user"]

__all__ = [
    "AgentFilter",
    "AgentName",
    "ExportFormat",
    "Limit",
    "MAX_LIMIT",
    "MODEL_HELP",
    "ModelSpec",
    "NewAgentName",
    "OutputFile",
    "SessionId",
    "UsageBy",
    "Yes",
]
