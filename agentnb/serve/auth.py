"""Who is calling: the API key of a request, checked by the store.

``Authorization: Bearer anb_...`` on every endpoint but ``/health``. An agent's
key may chat with and read the sessions of its own agent only; an admin key
(``agentnb keys create --admin``) may do everything. Missing, malformed,
unknown or revoked: 401; a key of another agent, or an agent key on an admin
endpoint: 403. No message ever echoes the key. Verification is the store's
(:meth:`agentnb.api.Store.verify_key`: lookup by hash, constant-time
comparison, ``last_used_at`` written at most about once a minute).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ApiError

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Store
    from ..schemas import AgentRecord, ApiKeyRecord

#: what a well-formed key looks like (``anb_`` + url-safe base64), checked before any lookup
_KEY_SHAPE = re.compile(r"^anb_[A-Za-z0-9_-]{16,128}$")

BEARER_HINT = "send Authorization: Bearer anb_... (create a key with agentnb keys create)"


@dataclass(frozen=True)
class Caller:
    """The verified key of a request."""

    key: "ApiKeyRecord"

    @property
    def admin(self) -> bool:
        return self.key.scope == "admin"

    def may_use(self, agent: "AgentRecord") -> bool:
        return self.admin or self.key.agent_id == agent.id

    def check_agent(self, agent: "AgentRecord") -> None:
        """403 unless this key may use ``agent``."""
        if not self.may_use(agent):
            raise ApiError(403, f"this API key may not use agent {agent.name!r}: an agent's "
                                "key reaches only its own agent")

    def check_agent_id(self, agent_id: uuid.UUID, name: str = "this session's agent") -> None:
        if not self.admin and self.key.agent_id != agent_id:
            raise ApiError(403, f"this API key may not read {name}: an agent's key reaches "
                                "only its own agent")

    def check_admin(self) -> None:
        """403 unless this is an admin key."""
        if not self.admin:
            raise ApiError(403, "this endpoint needs an admin key (agentnb keys create "
                                "--admin); an agent's key may only chat and read its sessions")


def presented_key(authorization: str | None) -> str:
    """The key in an ``Authorization`` header value; 401 when it is missing or malformed."""
    if authorization is None or not authorization.strip():
        raise ApiError(401, f"missing API key: {BEARER_HINT}")
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise ApiError(401, f"malformed Authorization header: {BEARER_HINT}")
    if not _KEY_SHAPE.match(value):
        raise ApiError(401, f"malformed API key (not an agentnb key): {BEARER_HINT}")
    return value


def authenticate(store: "Store", authorization: str | None) -> Caller:
    """The caller of a request with this ``Authorization`` header (401 if none)."""
    plain = presented_key(authorization)
    record = store.verify_key(plain)
    if record is None:
        raise ApiError(401, "invalid API key: unknown or revoked")
    return Caller(record)


__all__ = ["Caller", "authenticate", "presented_key"]
