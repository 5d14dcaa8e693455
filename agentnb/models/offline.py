"""The ``offline`` chat model: deterministic, no network, no key.

It is agentnb's default model, so that notebooks, tutorials and tests run
anywhere. It is a real :class:`~langchain_core.language_models.BaseChatModel`:
it streams token by token, reports token usage, calls bound tools and returns
structured output.
"""

from __future__ import annotations

import asyncio
import json
import re
from itertools import compress, count, repeat
from operator import is_, is_not
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, NamedTuple

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from ._calls import (
    args_from_schema,
    call_id,
    count_tokens,
    find_tool_calls,
    split_tokens,
    summarize_results,
)

__all__ = ["OfflineChatModel", "MAX_WORDS"]

#: the largest N honoured in "in N words"
MAX_WORDS = 20_000

_IN_N_WORDS = re.compile(r"\bin\s+(\d[\d,_]*)\s+words?\b", re.IGNORECASE)
_EXCERPT_WORDS = 30
_FILLER = (
    "The offline model writes this filler text so that long answers can be streamed, "
    "measured and stopped. Every sentence is plain and predictable, and the words come "
    "back in the same order each time. Nothing here needs a network, a key or a GPU. "
    "Use it to try the chat panel, the stop button, token budgets and the history store "
    "before you connect a real model."
).split()


class _Plan(NamedTuple):
    text: str
    tool_calls: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    finish_reason: str


def _excerpt(text: str, words: int = _EXCERPT_WORDS) -> str:
    parts = text.split()
    out = " ".join(parts[:words])
    return out + " …" if len(parts) > words else out


def _filler(n: int) -> str:
    words = [_FILLER[i % len(_FILLER)] for i in range(n)]
    if not words:
        return ""
    words[0] = words[0][:1].upper() + words[0][1:]
    if not words[-1].endswith("."):
        words[-1] = words[-1].rstrip(",") + "."
    return " ".join(words)


def _tool_choice_name(tool_choice: Any) -> str | None:
    """The forced tool name of an OpenAI-style ``tool_choice`` dict, if any."""
    if isinstance(tool_choice, dict):
        fn = tool_choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return fn["name"]
        if isinstance(tool_choice.get("name"), str):
            return tool_choice["name"]
    return None


class OfflineChatModel(BaseChatModel):
    """agentnb's built-in chat model: deterministic, offline, free.

    **Replies.** A plain message gets a short reply that quotes it
    (``You said: "..."``), mentions the system prompt when there is one, and
    counts the conversation's turns. A message containing ``in N words`` (e.g.
    "Tell me a story in 300 words") gets a reply of exactly N words of filler
    text (N is capped at 20,000): handy for demos of long streaming answers and
    the Stop button. Set ``token_delay`` (seconds between streamed tokens) to
    slow streaming down.

    **Tool convention.** When tools are bound (``bind_tools``) and the *last*
    human message contains ``NAME(k=v, ...)`` for a bound tool ``NAME`` whose
    arguments are Python literals (numbers, strings, lists, dicts, tuples,
    True/False/None), the model answers with an ``AIMessage`` whose
    ``tool_calls`` hold one call per occurrence, in text order, e.g.
    ``"add(a=2, b=3) and mul(a=2, b=3)"`` gives two calls. Positional literal
    arguments are matched to the tool's parameters in order
    (``magic_function(3)`` -> ``{"input": 3}``). Calls with a non-literal
    argument (``add(a=x)``), ``*args``/``**kw``, or the name of a tool that is
    not bound are ignored. Tool-call ids are deterministic (``call_`` + a hash
    of the name, the arguments, the position and the turn number).

    Once the messages after the last human message contain ``ToolMessage``
    results, the model does not call tools again; it answers with one sentence
    quoting every result: ``"add returned 5."`` for one result,
    ``"The results: add -> 5; mul -> 6."`` for several. A result with
    ``status="error"`` is reported as ``"add failed: <error>."`` (or
    ``"add -> error: <error>"`` among several).

    **Forced tools and structured output.** With ``tool_choice`` set to a tool
    name, ``"any"``, ``"required"`` or ``True``, the model always calls a tool
    (unless results are already there, see above): the calls written in the
    message if any, else the named tool (or, for ``"any"``, the first bound tool
    whose name appears in the message, else the first bound tool) with
    arguments generated from its JSON schema using the last human message:
    enum/Literal fields take the option named in the message (case-insensitive)
    or the first; strings an excerpt of the message; the k-th integer/number
    field the k-th number in the message (else the first, else 0), within its
    minimum/maximum; booleans are True only if the message says "yes" or
    "true"; lists get one element; nested objects recurse; optional fields are
    filled. ``tool_choice="none"`` never calls tools. This is what makes
    ``with_structured_output(schema)`` return a valid instance (pydantic class,
    TypedDict or JSON schema; every ``method`` goes through tool calling).

    **Usage.** One token per word or punctuation mark. ``input_tokens`` counts
    the prompt messages (plus one per message for its role, plus the bound
    tools' schemas), ``output_tokens`` the answer (or the tool calls' names and
    JSON arguments). Usage is on the final message and on the last streamed
    chunk. :meth:`get_num_tokens` and :meth:`get_num_tokens_from_messages` use
    the same counting.

    ``stop`` sequences cut the text answer before the first match and
    ``max_tokens`` cuts it to that many tokens (``finish_reason="length"``).
    ``temperature``, ``timeout``, ``max_retries`` and ``api_key`` are accepted
    for compatibility and ignored.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())

    model_name: str = Field(default="offline", alias="model")
    """Name reported in ``response_metadata["model_name"]``."""
    token_delay: float = Field(default=0.0, ge=0.0)
    """Seconds to wait between streamed tokens (0: no wait)."""
    max_tokens: int | None = Field(default=None, ge=0)
    stop: list[str] | None = None
    temperature: float | None = None
    timeout: float | None = None
    max_retries: int | None = None
    streaming: bool = False
    api_key: SecretStr | None = Field(default=None, exclude=True, repr=False)
    #: What the last calls learned about their messages, newest first (see _scan): one
    #: per conversation recently sent, so sessions that take turns (two users of one
    #: agent over HTTP, a panel beside %%chat) each continue their own count.
    _scans: "list[_Scan]" = PrivateAttr(default_factory=list)

    # ------------------------------------------------------------------ basics

    @property
    def _llm_type(self) -> str:
        return "agentnb-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "token_delay": self.token_delay,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="agentnb",
            ls_model_name=kwargs.get("model") or self.model_name,
            ls_model_type="chat",
        )
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    # --------------------------------------------------------- token counting

    def get_num_tokens(self, text: str) -> int:
        """Offline token count: one per word or punctuation mark."""
        return count_tokens(text)

    def get_token_ids(self, text: str) -> list[int]:
        """Stable fake token ids (a CRC of each token), as many as :meth:`get_num_tokens`."""
        return [
            zlib.crc32(tok.strip().encode()) % 100_000 for tok in split_tokens(text or "")
        ]

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[Any] | None = None,
    ) -> int:
        """Tokens of the messages (one extra per message for its role) and of ``tools``."""
        # A count for someone else (a memory budget) reuses the last call's scan but
        # does not replace it: the next model call continues from that one.
        return self._scan(messages, remember=False).tokens + _tools_tokens(tools)

    def _scan(self, messages: Sequence[BaseMessage], remember: bool = True) -> "_Scan":
        """Token count, human messages and system text of ``messages``, incrementally.

        A conversation sends its context again on every call, grown by a few
        messages: the messages (the same objects) that the last call already
        counted are not counted again, so a call costs what it adds, not the
        length of the conversation. Messages are immutable in practice
        (langchain-core's are pydantic models that nobody edits once sent).
        """
        prev, start = None, 0
        for known in self._scans:
            old = known.messages
            shared = min(len(old), len(messages))
            if shared <= start:
                continue
            # the first index where they differ, found in C (compress/map), not a Python loop
            at = next(compress(count(), map(is_not, old, messages)), shared)
            if at > start:
                prev, start = known, at
                if at == len(old):  # that whole conversation is this one's start
                    break
        # a sequel of a whole known conversation only adds new messages: nothing slid
        sequel = prev is not None and start == len(prev.messages)
        scan = _Scan.extend(prev, start, messages,
                            slid=None if sequel else self._slid(start, messages))
        if remember:
            # the scan this one continues is kept only when this is not simply its sequel
            kept = [k for k in self._scans if not (sequel and k is prev)]
            self._scans = [scan, *kept[:SCANS_KEPT - 1]]
        return scan

    def _slid(self, start: int, messages: Sequence[BaseMessage]) -> "tuple[_Scan, int, int] | None":
        """Where ``messages[start:]`` continues a run of a known conversation: (scan, index
        there, length), or None. A memory window (``window``, ``tokens``, ``summary``)
        sends the system message, then the newest turns: the start slides forward each
        turn, so the prefix ends at 1 while most of the window was counted last call."""
        if start >= len(messages):
            return None
        first = messages[start]
        for known in self._scans:
            old = known.messages
            at = next(compress(count(), map(is_, old, repeat(first))), None)
            if at is None or at < start:
                continue
            rest, ahead = old[at:], messages[start:]
            run = next(compress(count(), map(is_not, rest, ahead)), min(len(rest), len(ahead)))
            if run > 1:
                return known, at, run
        return None

    # ------------------------------------------------------------------ tools

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any form ``convert_to_openai_tool`` accepts), like real providers.

        ``tool_choice``: None/"auto" (follow the tool convention), "none" (never
        call), "any"/"required"/True (always call a tool), a tool name or
        ``{"type": "function", "function": {"name": ...}}`` (always call that tool).
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        if tool_choice is not None and tool_choice is not False:
            forced = tool_choice if isinstance(tool_choice, str) else _tool_choice_name(
                tool_choice
            )
            if (
                isinstance(forced, str)
                and forced not in ("auto", "none", "any", "required")
                and forced not in names
            ):
                raise ValueError(
                    f"tool_choice {forced!r} is not one of the bound tools {names}"
                )
            kwargs["tool_choice"] = tool_choice
        return super().bind(tools=formatted, **kwargs)

    # --------------------------------------------------------------- planning

    def _plan(
        self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any
    ) -> _Plan:
        tools: list[dict[str, Any]] = [t for t in (kwargs.get("tools") or []) if t]
        tool_choice = kwargs.get("tool_choice")
        schemas = {
            t["function"]["name"]: t["function"].get("parameters")
            for t in tools
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        }
        scan = self._scan(messages)
        input_tokens = scan.tokens + _tools_tokens(tools)

        last_human = scan.last_human
        if last_human >= 0:
            human_text = messages[last_human].text
        else:
            human_text = messages[-1].text if messages else ""
        turn = scan.humans
        after = messages[last_human + 1 :] if last_human >= 0 else list(messages)
        results = [m for m in after if isinstance(m, ToolMessage)]

        if results:
            text = self._results_sentence(results, after)
            return self._text_plan(text, input_tokens, stop)

        if schemas and tool_choice not in ("none", False):
            calls = self._choose_calls(human_text, schemas, tool_choice)
            if calls:
                tool_calls = [
                    {
                        "name": c["name"],
                        "args": c["args"],
                        "id": call_id(c["name"], c["args"], i, turn),
                        "type": "tool_call",
                    }
                    for i, c in enumerate(calls)
                ]
                out = sum(
                    count_tokens(c["name"])
                    + count_tokens(json.dumps(c["args"], ensure_ascii=False))
                    for c in tool_calls
                )
                return _Plan("", tool_calls, input_tokens, out, "tool_calls")

        system = " ".join(messages[i].text for i in scan.systems).strip()
        return self._text_plan(self._reply(human_text, system, turn), input_tokens, stop)

    @staticmethod
    def _choose_calls(
        text: str, schemas: dict[str, Any], tool_choice: Any
    ) -> list[dict[str, Any]]:
        calls = find_tool_calls(text, schemas)
        forced_name = tool_choice if isinstance(tool_choice, str) else _tool_choice_name(
            tool_choice
        )
        if forced_name in (None, "auto") and tool_choice is not True:
            return calls
        if forced_name in ("any", "required") or tool_choice is True:
            if calls:
                return calls
            lowered = text.lower()
            named = [n for n in schemas if n.lower() in lowered]
            name = named[0] if named else next(iter(schemas))
        else:
            chosen = [c for c in calls if c["name"] == forced_name]
            if chosen:
                return chosen
            name = forced_name
            if name not in schemas:
                return []
        return [{"name": name, "args": args_from_schema(schemas[name], text)}]

    @staticmethod
    def _results_sentence(results: list[ToolMessage], after: list[BaseMessage]) -> str:
        names: dict[str, str] = {}
        for m in after:
            for call in getattr(m, "tool_calls", None) or []:
                if call.get("id"):
                    names[call["id"]] = call.get("name", "tool")
        items = []
        for m in results:
            name = m.name or names.get(m.tool_call_id) or "tool"
            content = m.text if m.text or isinstance(m.content, list) else str(m.content)
            is_error = m.status == "error"
            items.append((name, content, is_error))
        return summarize_results(items)

    @staticmethod
    def _reply(text: str, system: str, turn: int) -> str:
        match = _IN_N_WORDS.search(text)
        if match:
            n = int(re.sub(r"[,_]", "", match.group(1)))
            n = max(1, min(n, MAX_WORDS))
            return _filler(n)
        text = text.strip()
        if not text:
            reply = "Hello! I am agentnb's offline model; send me a message."
        else:
            n_words = len(text.split())
            reply = (
                f'You said: "{_excerpt(text)}" '
                f"({n_words} word{'s' if n_words != 1 else ''})."
            )
        if system:
            reply += f' Following the system prompt: "{_excerpt(system, 12)}".'
        if turn > 1:
            reply += f" This is turn {turn} of our conversation."
        return reply + " (offline model: deterministic, no network)"

    def _text_plan(self, text: str, input_tokens: int, stop: list[str] | None) -> _Plan:
        finish = "stop"
        stops = [s for s in (stop if stop is not None else self.stop) or [] if s]
        if stops:
            cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
        tokens = split_tokens(text)
        if self.max_tokens is not None and len(tokens) > self.max_tokens:
            tokens = tokens[: self.max_tokens]
            text = "".join(tokens)
            finish = "length"
        return _Plan(text, [], input_tokens, len(tokens), finish)

    # --------------------------------------------------------------- messages

    def _usage(self, plan: _Plan) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=plan.input_tokens,
            output_tokens=plan.output_tokens,
            total_tokens=plan.input_tokens + plan.output_tokens,
        )

    def _metadata(self, plan: _Plan, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "model_name": kwargs.get("model") or self.model_name,
            "finish_reason": plan.finish_reason,
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        kwargs.pop("ls_structured_output_format", None)
        plan = self._plan(messages, stop, **kwargs)
        message = AIMessage(
            content=plan.text,
            tool_calls=plan.tool_calls,
            usage_metadata=self._usage(plan),
            response_metadata=self._metadata(plan, kwargs),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _chunks(self, plan: _Plan, kwargs: dict[str, Any]) -> Iterator[ChatGenerationChunk]:
        pieces: list[AIMessageChunk] = []
        if plan.tool_calls:
            for index, call in enumerate(plan.tool_calls):
                pieces.append(
                    AIMessageChunk(
                        content="",
                        tool_call_chunks=[
                            {
                                "name": call["name"],
                                "args": json.dumps(call["args"], ensure_ascii=False),
                                "id": call["id"],
                                "index": index,
                            }
                        ],
                    )
                )
            pieces.append(AIMessageChunk(content=""))
        else:
            pieces.extend(AIMessageChunk(content=tok) for tok in split_tokens(plan.text))
            if not pieces:
                pieces.append(AIMessageChunk(content=""))
        last = pieces[-1]
        pieces[-1] = AIMessageChunk(
            content=last.content,
            tool_call_chunks=last.tool_call_chunks,
            usage_metadata=self._usage(plan),
            response_metadata=self._metadata(plan, kwargs),
            chunk_position="last",
        )
        for piece in pieces:
            yield ChatGenerationChunk(message=piece)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        kwargs.pop("ls_structured_output_format", None)
        plan = self._plan(messages, stop, **kwargs)
        for i, chunk in enumerate(self._chunks(plan, kwargs)):
            if i and self.token_delay:
                time.sleep(self.token_delay)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        kwargs.pop("ls_structured_output_format", None)
        plan = self._plan(messages, stop, **kwargs)
        for i, chunk in enumerate(self._chunks(plan, kwargs)):
            if i and self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield chunk

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)


#: Conversations whose running totals a model keeps (the most recently sent ones).
SCANS_KEPT = 8


def _tools_tokens(tools: Sequence[Any] | None) -> int:
    total = 0
    for tool in tools or []:
        schema = tool if _is_openai_tool(tool) else convert_to_openai_tool(tool)
        total += count_tokens(json.dumps(schema, ensure_ascii=False))
    return total


def _message_tokens(message: BaseMessage) -> int:
    total = 1 + count_tokens(message.text)
    for call in getattr(message, "tool_calls", None) or []:
        total += count_tokens(call.get("name", "")) + count_tokens(
            json.dumps(call.get("args", {}), ensure_ascii=False)
        )
    return total


class _Scan:
    """Per-message running totals of one message list (see ``OfflineChatModel._scan``)."""

    __slots__ = ("messages", "cum_tokens", "cum_humans", "last_humans", "system_at")

    def __init__(self) -> None:
        self.messages: list[BaseMessage] = []
        self.cum_tokens: list[int] = []  # tokens of messages[: i + 1]
        self.cum_humans: list[int] = []  # human messages in messages[: i + 1]
        self.last_humans: list[int] = []  # index of the last human message up to i (-1)
        self.system_at: list[int] = []  # indices of system messages

    @classmethod
    def extend(cls, prev: "_Scan | None", start: int, messages: Sequence[BaseMessage],
               slid: "tuple[_Scan, int, int] | None" = None) -> "_Scan":
        """``prev``'s first ``start`` entries (they match ``messages``) plus the rest.

        ``slid`` (scan, at, run): ``messages[start:start + run]`` are that scan's
        messages from ``at`` on; their totals are taken from it, shifted.
        """
        scan = cls()
        scan.messages = list(messages)
        if prev is not None and start:
            scan.cum_tokens = prev.cum_tokens[:start]
            scan.cum_humans = prev.cum_humans[:start]
            scan.last_humans = prev.last_humans[:start]
            scan.system_at = [i for i in prev.system_at if i < start]
        else:
            start = 0
        tokens = scan.cum_tokens[-1] if start else 0
        humans = scan.cum_humans[-1] if start else 0
        last = scan.last_humans[-1] if start else -1
        if slid is not None:
            known, at, run = slid
            end = at + run
            tok0 = known.cum_tokens[at - 1] if at else 0
            hum0 = known.cum_humans[at - 1] if at else 0
            shift = start - at
            scan.cum_tokens += [tokens + c - tok0 for c in known.cum_tokens[at:end]]
            scan.cum_humans += [humans + c - hum0 for c in known.cum_humans[at:end]]
            scan.last_humans += [i + shift if i >= at else last
                                 for i in known.last_humans[at:end]]
            scan.system_at += [i + shift for i in known.system_at if at <= i < end]
            start += run
            tokens, humans, last = scan.cum_tokens[-1], scan.cum_humans[-1], scan.last_humans[-1]
        for i in range(start, len(messages)):
            m = messages[i]
            tokens += _message_tokens(m)
            if isinstance(m, HumanMessage):
                humans += 1
                last = i
            elif isinstance(m, SystemMessage):
                scan.system_at.append(i)
            scan.cum_tokens.append(tokens)
            scan.cum_humans.append(humans)
            scan.last_humans.append(last)
        return scan

    @property
    def tokens(self) -> int:
        return self.cum_tokens[-1] if self.cum_tokens else 0

    @property
    def humans(self) -> int:
        return self.cum_humans[-1] if self.cum_humans else 0

    @property
    def last_human(self) -> int:
        return self.last_humans[-1] if self.last_humans else -1

    @property
    def systems(self) -> list[int]:
        return self.system_at


def _is_openai_tool(tool: Any) -> bool:
    return (
        isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
    )
