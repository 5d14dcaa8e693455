"""The runtime of a store in this process: what runs turns.

A :class:`~agentnb.api.Store` is the records side (agents, sessions, keys, ...);
its :class:`Runtime` holds what a turn needs that is not a record: the engine
(with its history cache), the private event-loop thread of the synchronous API,
the tool registry (notebook functions, LangChain tools), the built-in tools'
namespace, and the chat models built so far. :func:`agentnb.connect` composes
the two; the notebook extension passes its namespace in, so nothing outside
``agentnb.notebook`` looks for IPython.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Engine
    from .loopthread import LoopThread
    from .store import Repository
    from .schemas import AgentConfig
    from .tools import ToolRegistry, ToolSpec
    from .tools.mcp import McpHub

SqlRows = Callable[[str, "int | None"], "tuple[list[str], list[tuple]]"]


class Runtime:
    """Engine, loop thread, tools and models of one store, built on first use.

    ``namespace``: the variables the built-in tools (``list_variables``,
    ``describe_variable``, ``run_python``) see, and where a tool named in an
    agent's config is looked up when it was not registered (a notebook's
    ``user_ns``). ``sql_rows``: how the ``query_store`` tool reads the store.
    """

    def __init__(self, repo: "Repository", *, namespace: dict[str, Any] | None = None,
                 sql_rows: SqlRows | None = None) -> None:
        self._repo = repo
        self.namespace = namespace
        self._sql_rows = sql_rows
        self._lock = threading.Lock()
        self._tools: ToolRegistry | None = None
        self._engine: Engine | None = None
        self._loop: LoopThread | None = None
        self._models: dict[str, Any] = {}
        self._mcp: McpHub | None = None

    @property
    def tools(self) -> "ToolRegistry":
        """The process's tool registry (notebook functions and LangChain tools)."""
        if self._tools is None:
            from .tools import ToolRegistry

            with self._lock:
                if self._tools is None:
                    self._tools = ToolRegistry()
        return self._tools

    @property
    def has_tools(self) -> bool:
        """True once something was registered (without building the registry)."""
        return self._tools is not None and len(self._tools) > 0

    @property
    def engine(self) -> "Engine":
        """The agent loop bound to this store."""
        if self._engine is None:
            from .engine import Engine

            with self._lock:
                if self._engine is None:
                    self._engine = Engine(self._repo)
        return self._engine

    @property
    def loop(self) -> "LoopThread":
        """The private event-loop thread the synchronous API runs turns on."""
        if self._loop is None:
            from .loopthread import LoopThread

            with self._lock:
                if self._loop is None:
                    self._loop = LoopThread()
        return self._loop

    @property
    def mcp(self) -> "McpHub":
        """The MCP servers of this process (started on first use, on their own loop thread)."""
        if self._mcp is None:
            from .loopthread import LoopThread
            from .tools.mcp import McpHub

            with self._lock:
                if self._mcp is None:
                    self._mcp = McpHub(LoopThread("agentnb-mcp"))
        return self._mcp

    def mcp_tool_specs(self, config: "AgentConfig") -> "list[ToolSpec]":
        """The tools of the agent's MCP servers (each server started on first use).

        A server that does not start raises :class:`~agentnb.errors.McpServerError`.
        """
        if not config.mcp_servers:
            return []
        return self.mcp.specs(config.mcp_servers)

    def model(self, spec: str, model_kwargs: Mapping[str, Any] | None = None) -> Any:
        """The chat model for a spec and settings (built once per process)."""
        key = spec + "|" + json.dumps(dict(model_kwargs or {}), sort_keys=True, default=str)
        found = self._models.get(key)
        if found is None:
            from .models import resolve_model

            found = self._models[key] = resolve_model(spec, dict(model_kwargs or {}))
        return found

    @staticmethod
    def token_counter(chat_model: Any) -> Callable:
        """How to count tokens for a model without any download (memory budgets)."""
        from .memory import approx_tokens
        from .models import OfflineChatModel

        if isinstance(chat_model, OfflineChatModel):
            return chat_model.get_num_tokens_from_messages
        return approx_tokens

    def resolve_tool(self, name: str) -> "ToolSpec | None":
        """A registered tool, a built-in, or a documented function of the namespace; or None."""
        if self._tools is not None and name in self._tools:
            return self._tools.get(name)
        from .tools import BUILTIN_TOOL_NAMES, builtin_tools

        if name in BUILTIN_TOOL_NAMES:
            return builtin_tools(namespace=self.namespace, sql_rows=self._sql_rows).get(name)
        candidate = (self.namespace or {}).get(name)
        if callable(candidate):
            try:
                return self.tools.register(candidate, name=name)
            except Exception:  # not usable as a tool: reported as missing
                return None
        return None

    def tool_specs(self, names: Iterable[str]) -> "tuple[list[ToolSpec], list[str]]":
        """The tools for ``names`` that this process can run, and the names it cannot."""
        specs, missing = [], []
        for name in names:
            spec = self.resolve_tool(name)
            if spec is None:
                missing.append(name)
            else:
                specs.append(spec)
        return specs, missing

    def close(self) -> None:
        """Stop the MCP servers and the loop thread (a later turn starts new ones)."""
        if self._mcp is not None:
            hub, self._mcp = self._mcp, None
            hub.close()
        if self._loop is not None:
            self._loop.stop()


__all__ = ["Runtime"]
