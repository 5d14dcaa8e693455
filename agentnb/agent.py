"""``Agent``: the handle users hold for one stored agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .schemas import AgentConfig, AgentRecord, SessionSummary

if TYPE_CHECKING:  # pragma: no cover
    from .api import Store


class Agent:
    """One agent of a store: its config, its sessions, and (with the engine) chat."""

    def __init__(self, store: "Store", record: AgentRecord) -> None:
        self.store = store
        self.record = record

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def id(self):
        return self.record.id

    @property
    def config(self) -> AgentConfig:
        return self.record.config

    def refresh(self) -> "Agent":
        """Reload the record from the store."""
        self.record = self.store.repo.get_agent(self.record.id)
        return self

    def set(self, **changes: Any) -> "Agent":
        """Change config keys (``model=...``, ``memory="window"``, ``temperature=0``)."""
        self.record = self.store.update_agent(self.name, **changes)
        return self

    def sessions(self) -> list[SessionSummary]:
        """This agent's sessions, newest first."""
        return self.store.repo.list_sessions(self.id)

    def __repr__(self) -> str:
        return f"<agentnb.Agent {self.name!r} model={self.config.model!r}>"
