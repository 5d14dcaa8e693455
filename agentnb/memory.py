"""Context strategies: which part of a session the model sees each turn.

A session is a list of turns; a turn starts with a user message and holds
the assistant messages, tool calls and tool results that followed it. Every
strategy keeps the system prompt and keeps or drops whole turns, so a tool
call is never separated from its result.

* ``full``: every turn.
* ``window``: the last ``window_turns`` turns.
* ``tokens``: the newest turns that fit in ``max_tokens`` together with the
  system prompt and the new message.
* ``summary``: a stored summary of the older turns, plus the last
  ``keep_turns`` turns. The engine asks the agent's model for the summary
  (see :func:`summary_due`) and stores it in the session's attrs, refreshing
  it once ``keep_turns`` more turns have aged out of the window.
"""

from __future__ import annotations

import json
from typing import Callable, Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from .schemas import MemoryConfig, MessageRecord

TokenCounter = Callable[[Sequence[BaseMessage]], int]

SUMMARY_PROMPT = (
    "Summarise the conversation below for your own later reference: the user's goals, "
    "facts and numbers established, decisions, tool results that matter, and open "
    "questions. Be concise (at most 200 words)."
)


def approx_tokens(messages: Sequence[BaseMessage]) -> int:
    """A model-independent token estimate: ~4 characters a token, plus overhead a message.

    Used when the model has no offline counter (provider tokenizers may need
    a download, which this must never trigger).
    """
    total = 0
    for m in messages:
        text = m.content if isinstance(m.content, str) else json.dumps(m.content, default=str)
        total += 4 + (len(text) + 3) // 4
        for call in getattr(m, "tool_calls", None) or []:
            total += 4 + len(json.dumps(call.get("args", {}), default=str)) // 4
    return total


def call_id(record_id) -> str:
    """The id under which a stored tool call is replayed to a model."""
    return "call_" + str(record_id).replace("-", "")[:24]


def group_turns(history: Sequence[MessageRecord]) -> list[list[MessageRecord]]:
    """Split messages into turns, each starting at a user message.

    Messages before the first user message (a loaded partial window) are
    dropped: they belong to a turn whose start is not in view.
    """
    turns: list[list[MessageRecord]] = []
    for m in history:
        if m.role == "user":
            turns.append([m])
        elif turns:
            turns[-1].append(m)
    return turns


def turn_to_messages(turn: Sequence[MessageRecord]) -> list[BaseMessage]:
    """LangChain messages for one stored turn, always a valid sequence.

    Failed assistant messages are skipped; an assistant tool call whose
    result was never stored (an interrupted turn) is dropped with it, and a
    tool result whose call is missing is dropped too.
    """
    answered = {
        str(m.attrs.get("tool_call_record_id"))
        for m in turn
        if m.role == "tool" and m.attrs.get("tool_call_record_id")
    }
    out: list[BaseMessage] = []
    emitted_calls: set[str] = set()
    for m in turn:
        if m.role == "user":
            out.append(HumanMessage(m.content))
        elif m.role == "system":
            out.append(SystemMessage(m.content))
        elif m.role == "assistant":
            if m.status == "error" and not m.content:
                continue
            calls = [
                {"id": call_id(c.id), "name": c.tool_name, "args": c.input_args, "type": "tool_call"}
                for c in m.tool_calls
                if str(c.id) in answered
            ]
            emitted_calls.update(str(c.id) for c in m.tool_calls if str(c.id) in answered)
            if not calls and not m.content:
                continue
            out.append(AIMessage(m.content, tool_calls=calls))
        elif m.role == "tool":
            rid = str(m.attrs.get("tool_call_record_id"))
            if rid not in emitted_calls:
                continue
            out.append(
                ToolMessage(m.content, tool_call_id=call_id(rid), name=m.attrs.get("tool_name"))
            )
    return out


def convert_turns(
    history: Sequence[MessageRecord], memo: dict | None = None
) -> list[list[BaseMessage]]:
    """:func:`turn_to_messages` of every turn of ``history``, oldest first.

    With a ``memo`` dict, a turn already converted in an earlier call (same
    first and last message id, same length: stored messages never change)
    is reused; the memo is updated in place and keeps only this call's turns
    once it holds twice as many as needed. The returned messages are shared
    between calls: callers must not mutate them.
    """
    if memo is None:
        return [turn_to_messages(t) for t in group_turns(history)]
    grown = _grown(history, memo)
    if grown is not None:
        return grown
    grouped = group_turns(history)
    out: list[list[BaseMessage]] = []
    keys = []
    for t in grouped:
        key = (t[0].id, t[-1].id, len(t))
        keys.append(key)
        converted = memo.get(key)
        if converted is None:
            converted = memo[key] = turn_to_messages(t)
        out.append(converted)
    if len(memo) > 2 * len(keys) + 16:
        kept = {k: memo[k] for k in (*keys, _SYSTEM, "token counts") if k in memo}
        memo.clear()
        memo.update(kept)
    if history:
        memo[_PREFIX] = (len(history), history[0], history[-1], out)
    return out


#: memo key of the last call's history and result, for :func:`_grown`
_PREFIX = "previous history"


def _grown(history: Sequence[MessageRecord], memo: dict) -> list[list[BaseMessage]] | None:
    """The converted turns when ``history`` is the last call's history plus whole turns.

    A session's cached history grows by appending turns (the same record
    objects, see the engine's cache), so the turns converted last time are a
    prefix of this call's: only the new turns are grouped and converted, and
    a turn costs what it adds, not what the session holds. None when it is
    not that case (another start: a sliding window; fewer messages).
    """
    prev = memo.get(_PREFIX)
    if prev is None:
        return None
    n, first, last, out = prev
    if len(history) < n or history[0] is not first or history[n - 1] is not last:
        return None
    if len(history) == n:
        return out
    if history[n].role != "user":  # the new part does not start a turn: convert it all
        return None
    new = [turn_to_messages(t) for t in group_turns(history[n:])]
    out = out + new  # a new list: an earlier result stays as it was
    memo[_PREFIX] = (len(history), history[0], history[-1], out)
    return out


def select_turns(
    memory: MemoryConfig,
    turns: list[list[BaseMessage]],
    *,
    fixed: Sequence[BaseMessage],
    count_tokens: TokenCounter,
    token_memo: dict | None = None,
) -> list[list[BaseMessage]]:
    """The turns a strategy keeps, oldest first (``fixed``: system + new message).

    ``token_memo``: a dict kept between calls for ``tokens``, holding each
    turn's count (turns are the shared lists :func:`convert_turns` returns,
    and stored turns never change), so a turn is counted once, not every turn.
    """
    if memory.strategy == "full":
        return turns
    if memory.strategy == "window":
        return turns[-memory.window_turns :]
    if memory.strategy == "summary":
        return turns[-memory.keep_turns :]
    # tokens: newest first while they fit
    budget = memory.max_tokens - count_tokens(list(fixed))
    kept: list[list[BaseMessage]] = []
    for turn in reversed(turns):
        cost = _turn_tokens(turn, count_tokens, token_memo)
        if cost > budget:
            break
        budget -= cost
        kept.append(turn)
    kept.reverse()
    if token_memo is not None and len(token_memo) > 2 * len(turns) + 16:
        alive = {id(t) for t in turns}
        for key in [k for k in token_memo if k not in alive]:
            del token_memo[key]
    return kept


def _turn_tokens(turn: list[BaseMessage], count_tokens: TokenCounter,
                 memo: dict | None) -> int:
    if memo is None:
        return count_tokens(turn)
    # The entry holds the turn itself: its id cannot be reused while it is cached.
    entry = memo.get(id(turn))
    if entry is None or entry[0] is not turn:
        entry = memo[id(turn)] = (turn, count_tokens(turn))
    return entry[1]


def _token_memo(memo: dict, count_tokens: TokenCounter) -> dict:
    """The per-turn counts in ``memo`` for this counter (a new model: counted afresh).

    A model's bound method is a new object on every access, so the counter is
    known by its owner and function, held here (not by id) so neither can be
    replaced by another object at the same address.
    """
    who = (getattr(count_tokens, "__self__", None),
           getattr(count_tokens, "__func__", count_tokens))
    slot = memo.get("token counts")
    if slot is None or slot[0][0] is not who[0] or slot[0][1] is not who[1]:
        slot = memo["token counts"] = (who, {})
    return slot[1]


def build_context(
    memory: MemoryConfig,
    system: str,
    history: Sequence[MessageRecord],
    new_message: BaseMessage | None,
    *,
    summary: str | None = None,
    count_tokens: TokenCounter = approx_tokens,
    memo: dict | None = None,
    stats: dict | None = None,
) -> list[BaseMessage]:
    """The messages to send: system prompt (+ summary), kept turns, the new message.

    ``memo``: a dict kept by the caller between turns of one session, so
    that stored turns are converted to LangChain messages once, not every
    turn (see :func:`convert_turns`). ``stats``: a dict that receives
    ``turns`` (whole turns in ``history``) and ``kept`` (turns sent), for
    :func:`needs_older_history`.
    """
    system_text = system or ""
    if memory.strategy == "summary" and summary:
        system_text = (
            system_text + "\n\n" if system_text else ""
        ) + f"Summary of the earlier conversation:\n{summary}"
    head: list[BaseMessage] = [_system_message(system_text, memo)] if system_text else []
    tail: list[BaseMessage] = [new_message] if new_message is not None else []
    turns = [t for t in convert_turns(history, memo) if t]
    token_memo = None
    if memo is not None and memory.strategy == "tokens":
        token_memo = _token_memo(memo, count_tokens)
    kept = select_turns(memory, turns, fixed=head + tail, count_tokens=count_tokens,
                        token_memo=token_memo)
    if stats is not None:
        stats["turns"] = len(turns)
        stats["kept"] = len(kept)
    return head + [m for t in kept for m in t] + tail


def _system_message(text: str, memo: dict | None) -> SystemMessage:
    """The system message, the same object from turn to turn while its text stays (a
    model that remembers what it has seen, like the offline one's counter, sees the
    context grow instead of a new context)."""
    if memo is None:
        return SystemMessage(text)
    found = memo.get(_SYSTEM)
    if found is None or found.content != text:
        found = memo[_SYSTEM] = SystemMessage(text)
    return found


_SYSTEM = "system message"


def needs_older_history(memory: MemoryConfig, stats: dict) -> bool:
    """Whether turns older than the loaded ones could change the context.

    Asked when the history given to :func:`build_context` was cut at
    :func:`history_bound` messages: ``window`` wants more when it found
    fewer than ``window_turns`` whole turns (turns with many tool calls can
    be longer than the bound assumes), ``tokens`` when every loaded turn fit
    in the budget (the model's counter may count fewer tokens a message
    than the bound assumes).
    """
    if memory.strategy == "window":
        return stats["kept"] < memory.window_turns
    if memory.strategy == "tokens":
        return stats["kept"] == stats["turns"]
    return False


def history_bound(memory: MemoryConfig) -> int | None:
    """How many of the newest stored messages a strategy usually needs (None: all).

    A first guess: the engine loads more when :func:`needs_older_history`
    says the guess was short.
    """
    if memory.strategy == "window":
        return max(memory.window_turns * 16, 64)
    if memory.strategy == "tokens":
        return max(memory.max_tokens // 4, 64)
    return None  # full and summary read the whole session


def summary_due(
    memory: MemoryConfig, history: Sequence[MessageRecord], stored: dict | None
) -> tuple[list[MessageRecord], int] | None:
    """For ``summary``: the older messages to fold into a new summary, or None.

    A summary covers every turn before the last ``keep_turns``. It is
    refreshed once at least ``keep_turns`` turns that it does not cover have
    left the window, so the model is asked rarely, not every turn.
    """
    if memory.strategy != "summary":
        return None
    keep = memory.keep_turns
    through = int(stored.get("through_position", -1)) if stored else -1
    # Walk back from the newest message to the first turn the summary covers: a turn
    # costs the turns since the summary, not the whole session.
    starts: list[int] = []  # indices of turns' first (user) messages, newest first
    for i in range(len(history) - 1, -1, -1):
        m = history[i]
        if m.role == "user":
            if len(starts) >= keep and m.position <= through:
                break  # this turn and every older one are covered
            starts.append(i)
    if len(starts) <= keep:
        return None  # no turn older than the kept ones (or none uncovered)
    window = starts[keep - 1] if keep > 0 else len(history)  # the kept turns start here
    uncovered = starts[keep:]  # older turns the summary does not cover, newest first
    if stored and len(uncovered) < keep:
        return None
    messages = list(history[uncovered[-1]:window])
    return messages, history[window - 1].position


def transcript(messages: Sequence[MessageRecord]) -> str:
    """Plain text of stored messages, for the summariser."""
    lines = []
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            for c in m.tool_calls:
                lines.append(f"assistant called {c.tool_name}({json.dumps(c.input_args)})")
        if m.content:
            lines.append(f"{m.role}: {m.content}")
    return "\n".join(lines)
