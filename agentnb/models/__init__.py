"""Chat models by spec (``provider:model``) and the built-in ``offline`` model.

Importing this package imports neither langchain-core nor any integration
package; :func:`resolve_model` imports what the spec needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .registry import (
    PROVIDERS,
    ProviderInfo,
    list_providers,
    parse_model_spec,
    resolve_model,
)

if TYPE_CHECKING:  # pragma: no cover
    from .offline import OfflineChatModel

__all__ = [
    "PROVIDERS",
    "OfflineChatModel",
    "ProviderInfo",
    "list_providers",
    "parse_model_spec",
    "resolve_model",
]


def __getattr__(name: str) -> Any:
    if name == "OfflineChatModel":
        from .offline import OfflineChatModel

        return OfflineChatModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
