"""Turning Python functions into tools, and the registry that holds them.

A function is a tool when its signature and docstring say enough: a name
(``def``, not a lambda), a docstring (the model reads it), and a type hint on
every parameter (the JSON schema comes from them). Per-argument descriptions
from a Google-style ``Args:`` section land in the schema. langchain-core's
``StructuredTool.from_function`` does the conversion; this module checks the
function first so that a mistake is one line that says how to fix it.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Iterable, Iterator, Literal, get_type_hints

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, TypeAdapter

from ..errors import InvalidValueError, NotFoundError, ToolDefinitionError

__all__ = ["ToolSource", "ToolSpec", "ToolRegistry", "tool_from_function"]

ToolSource = Literal["notebook", "builtin", "langchain", "mcp"]

#: What chat-model APIs accept as a tool name (OpenAI's rule, the strictest).
TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_GOOGLE_ARGS = re.compile(r"^\s*(Args|Arguments|Parameters)\s*:\s*$", re.M)


class ToolSpec(BaseModel):
    """A tool an agent can be given: the langchain tool plus how to run it."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    name: str
    description: str
    tool: BaseTool
    requires_approval: bool = False
    source: ToolSource = "notebook"
    #: What a tool call's stored ``attrs`` record about the tool (an MCP tool: its server).
    call_attrs: dict[str, Any] = {}

    @property
    def is_async(self) -> bool:
        """True when the tool has a native coroutine (it runs on the event loop)."""
        return _has_coroutine(self.tool)


def _has_coroutine(tool: BaseTool) -> bool:
    if isinstance(tool, StructuredTool):
        return tool.coroutine is not None
    coroutine = getattr(tool, "coroutine", None)
    if coroutine is not None:
        return True
    return type(tool)._arun is not BaseTool._arun


def _label(fn: Any) -> str:
    name = getattr(fn, "__name__", None)
    return f"{name}()" if name else repr(fn)


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not TOOL_NAME_PATTERN.match(name):
        raise ToolDefinitionError(
            f"{what}: tool name {name!r} is not usable; use a letter or '_', then letters, "
            "digits, '_' or '-', at most 64 characters"
        )
    return name


def _spec_from_basetool(tool: BaseTool, name: str | None, requires_approval: bool,
                        source: ToolSource) -> ToolSpec:
    if name is not None and name != tool.name:
        _check_name(name, f"tool {tool.name!r}")
        tool = tool.model_copy(update={"name": name})
    _check_name(tool.name, f"tool {tool.name!r}")
    return ToolSpec(name=tool.name, description=tool.description or "", tool=tool,
                    requires_approval=requires_approval, source=source)


def _check_function(fn: Any) -> tuple[str, inspect.Signature]:
    """Refuse what cannot be a tool, with a one-line fix; the function's name and signature."""
    if inspect.isclass(fn):
        raise ToolDefinitionError(
            f"{fn.__name__} is a class, not a function; write a function (with a docstring) "
            "that uses it"
        )
    if not callable(fn):
        raise ToolDefinitionError(
            f"{fn!r} is a {type(fn).__name__}, not a function; a tool is a function defined "
            "with def"
        )
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        raise ToolDefinitionError(
            f"{_label(fn)} is not a plain function ({type(fn).__name__}); wrap it in a def with "
            "a docstring and annotated parameters"
        )
    fn_name = fn.__name__
    if fn_name == "<lambda>":
        raise ToolDefinitionError(
            "a lambda cannot be a tool: give it a name with def, a docstring and annotated "
            "parameters"
        )
    signature = inspect.signature(fn)
    label = _label(fn)
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            raise ToolDefinitionError(
                f"{label} takes *{param.name}; a tool needs named parameters the model can fill "
                f"(replace *{param.name} with e.g. {param.name}: list[str])"
            )
        if param.kind is param.VAR_KEYWORD:
            raise ToolDefinitionError(
                f"{label} takes **{param.name}; a tool needs named parameters the model can fill "
                f"(replace **{param.name} with named, annotated parameters)"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(
                f"{label}: parameter {param.name!r} is positional-only; remove the '/' from the "
                "signature (tools are called with keyword arguments)"
            )
        if param.annotation is inspect.Parameter.empty:
            raise ToolDefinitionError(
                f"{label}: annotate parameter {param.name!r} (e.g. {param.name}: int) so the "
                "model knows what to send"
            )
    return fn_name, signature


def _type_hints(fn: Any) -> dict[str, Any]:
    try:
        return get_type_hints(fn, include_extras=True)
    except Exception as exc:  # a forward reference that does not resolve
        raise ToolDefinitionError(
            f"{_label(fn)}: its type hints cannot be resolved ({type(exc).__name__}: {exc}); "
            "define the types before the function"
        ) from None


def _check_json_types(fn: Any, tool: BaseTool, hints: dict[str, Any]) -> None:
    """Every parameter the model fills must have a JSON schema (the model sends JSON)."""
    schema = tool.tool_call_schema
    is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
    fields = schema.model_fields if is_model else {}
    # langchain leaves callbacks, run_manager, RunnableConfig and injected args out
    for name in fields:
        hint = hints.get(name)
        if hint is None:
            continue
        try:
            TypeAdapter(hint).json_schema()
        except Exception:
            type_name = getattr(hint, "__name__", None) or str(hint)
            raise ToolDefinitionError(
                f"{_label(fn)}: parameter {name!r} has type {type_name}, which the model cannot "
                "send as JSON; use str, int, float, bool, list, dict, a Literal or a pydantic "
                "model "
                "(e.g. take a variable's name as str and look it up)"
            ) from None
    try:
        if fields:
            schema.model_json_schema()
    except Exception as exc:
        raise ToolDefinitionError(
            f"{_label(fn)}: no JSON schema can be made from its parameters ({type(exc).__name__}); "
            "use JSON-friendly types (str, int, float, bool, list, dict, pydantic models)"
        ) from None


def tool_from_function(
    fn: Callable[..., Any] | BaseTool,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool = False,
) -> ToolSpec:
    """Make a tool from a Python function (sync or async) or take a langchain tool as it is.

    The schema comes from the type hints, the description from the docstring
    (or ``description``); a Google-style ``Args:`` section gives each argument
    its description. Raises :class:`ToolDefinitionError` naming the function and
    the fix for a lambda, a missing docstring, an unannotated parameter,
    ``*args``/``**kwargs`` or a parameter type that has no JSON form.
    """
    if isinstance(fn, BaseTool):
        return _spec_from_basetool(fn, name, requires_approval, "langchain")
    fn_name, signature = _check_function(fn)
    label = _label(fn)
    tool_name = _check_name(name or fn_name, label)
    doc = inspect.getdoc(fn) or ""
    if description is not None and not description.strip():
        raise ToolDefinitionError(f"{label}: the description is empty; say what the tool does")
    if not doc.strip() and description is None:
        raise ToolDefinitionError(
            f"{label} has no docstring; add a docstring saying what it does (the model reads it)"
        )
    hints = _type_hints(fn)
    is_async = inspect.iscoroutinefunction(fn)
    parse = bool(_GOOGLE_ARGS.search(doc))
    try:
        tool = StructuredTool.from_function(
            func=None if is_async else fn,
            coroutine=fn if is_async else None,
            name=tool_name,
            description=description if description is not None else (None if parse else doc),
            parse_docstring=parse,
            error_on_invalid_docstring=False,
        )
    except ValueError as exc:
        # langchain's docstring check: "Arg zz in docstring not found in function signature."
        raise ToolDefinitionError(
            f"{label}: its docstring does not match its parameters ({exc}); fix the Args: section"
        ) from None
    _check_json_types(fn, tool, hints)
    return ToolSpec(name=tool_name, description=tool.description, tool=tool,
                    requires_approval=requires_approval, source="notebook")


from ..text import did_you_mean as close_match  # noqa: E402  (the one rule)


class ToolRegistry:
    """The tools of a process (or a notebook): name -> :class:`ToolSpec`.

    Registering a name again replaces the old tool: a notebook user redefines
    functions all the time, and the newest definition is the one that runs.
    """

    def __init__(self) -> None:
        self._specs: dict[str, ToolSpec] = {}

    def register(self, obj: Callable[..., Any] | BaseTool | ToolSpec, *, name: str | None = None,
                 requires_approval: bool = False) -> ToolSpec:
        """Add a function, a langchain tool or a ready :class:`ToolSpec`; returns its spec."""
        if isinstance(obj, ToolSpec):
            spec = obj
            if name is not None and name != spec.name:
                renamed = _spec_from_basetool(spec.tool, name, spec.requires_approval, spec.source)
                spec = renamed
            if requires_approval and not spec.requires_approval:
                spec = spec.model_copy(update={"requires_approval": True})
        else:
            spec = tool_from_function(obj, name=name, requires_approval=requires_approval)
        self._specs[spec.name] = spec
        return spec

    def _unknown(self, name: str) -> str:
        known = sorted(self._specs)
        hint = close_match(name, known)
        message = f"no tool named {name!r}"
        if hint:
            message += f"; did you mean {hint!r}?"
        message += f" (tools: {', '.join(known)})" if known else " (no tools registered yet)"
        return message

    def get(self, name: str) -> ToolSpec:
        """The tool called ``name``; :class:`NotFoundError` (with a suggestion) if there is none."""
        try:
            return self._specs[name]
        except KeyError:
            raise NotFoundError(self._unknown(name)) from None

    def resolve(self, names: Iterable[str]) -> list[ToolSpec]:
        """The tools for ``names``, in order.

        :class:`InvalidValueError` names the first unknown one, with a close match.
        """
        specs = []
        for name in names:
            if name not in self._specs:
                raise InvalidValueError(self._unknown(name))
            specs.append(self._specs[name])
        return specs

    def names(self) -> list[str]:
        """Registered tool names, sorted."""
        return sorted(self._specs)

    def specs(self) -> list[ToolSpec]:
        """Registered tools, sorted by name."""
        return [self._specs[n] for n in self.names()]

    def remove(self, name: str) -> ToolSpec:
        """Forget a tool; returns it. :class:`NotFoundError` if there is none."""
        spec = self.get(name)
        del self._specs[name]
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<ToolRegistry {', '.join(self.names()) or '(empty)'}>"
