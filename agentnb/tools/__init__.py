"""Tools: notebook functions, LangChain tools and built-ins, and running their calls.

* :func:`tool_from_function` / :class:`ToolRegistry`: a documented, annotated
  Python function (sync or async) or a LangChain ``BaseTool`` becomes a
  :class:`ToolSpec`.
* :func:`builtin_tools`: ``list_variables``, ``describe_variable``,
  ``run_python`` (needs approval) and ``query_store``, made from what they need.
* :func:`run_tool_call`: validate, run with a timeout, and turn the result or
  the error into a :class:`ToolOutcome` the model can read.
* :mod:`.mcp`: the tools of an agent's MCP servers (``McpHub``, one per runtime;
  imported on first use, never from here).
"""

from .builtins import BUILTIN_TOOL_NAMES, builtin_tools, check_store_query
from .registry import ToolRegistry, ToolSource, ToolSpec, tool_from_function
from .runner import DEFAULT_MAX_OUTPUT_CHARS, ToolOutcome, format_result, run_tool_call

__all__ = [
    "BUILTIN_TOOL_NAMES",
    "DEFAULT_MAX_OUTPUT_CHARS",
    "ToolOutcome",
    "ToolRegistry",
    "ToolSource",
    "ToolSpec",
    "builtin_tools",
    "check_store_query",
    "format_result",
    "run_tool_call",
    "tool_from_function",
]
