"""``agent.map``: one independent turn per input, with bounded concurrency.

Each item's turn sees only the system prompt and the item (no shared
history) and is stored, like every turn, in one new session of the agent
(``attrs.kind == "map"``), so a batch run is as queryable as a chat.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Sequence

from .errors import InvalidValueError
from .events import Reply
from .text import interpolate

if TYPE_CHECKING:  # pragma: no cover
    from .agent import Agent


def _render(prompt: str | None, item: Any) -> str:
    if isinstance(item, dict):
        fields = item
    else:
        fields = {}
    if prompt is None:
        if isinstance(item, str):
            return item
        if isinstance(item, dict):
            if len(item) == 1:
                return str(next(iter(item.values())))
            return json.dumps(item, default=str, ensure_ascii=False)
        return str(item)
    values = dict(fields)
    values.setdefault("item", item if not isinstance(item, dict) else json.dumps(
        item, default=str, ensure_ascii=False))
    # the rule of %%chat: fields are filled, anything else in braces (JSON) stays as written
    return interpolate(prompt, values)


def _inputs(items: Any) -> tuple[list[Any], Any, str]:
    """(items as a list, the pandas index or None, kind: list|series|frame)."""
    pd = None
    try:
        import sys

        pd = sys.modules.get("pandas")
    except Exception:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(items, pd.DataFrame):
        return items.to_dict(orient="records"), items.index, "frame"
    if pd is not None and isinstance(items, pd.Series):
        return list(items.tolist()), items.index, "series"
    if isinstance(items, (str, bytes)):
        raise InvalidValueError("map takes a list of inputs, not one string")
    try:
        return list(items), None, "list"
    except TypeError:
        raise InvalidValueError(f"map takes a list, Series or DataFrame, not {type(items).__name__}") from None


async def amap(agent: "Agent", items: Sequence[Any], *, schema: Any, prompt: str | None,
               concurrency: int, retries: int, tools: bool, model: str | None,
               on_done=None) -> list[Reply]:
    """Run every item; replies in input order (never raises for an item's failure)."""
    if concurrency < 1:
        raise InvalidValueError("concurrency must be at least 1")
    session = await asyncio.to_thread(
        agent.store.new_session, agent.id, title=f"map over {len(items)} items",
        user=agent.user, kind="map", items=len(items))
    base = await asyncio.to_thread(
        agent._request, "map", session_record=session, tools=tools, model=model)
    semaphore = asyncio.Semaphore(concurrency)
    results: list[Reply | None] = [None] * len(items)

    async def one(index: int, item: Any) -> None:
        async with semaphore:
            message = _render(prompt, item)
            reply = None
            for _attempt in range(retries + 1):
                req = _copy_request(base, message, schema)
                reply = await agent.store.runtime.engine.run_turn(req, _ignore)
                # "interrupted": the run was cancelled (Ctrl-C, Stop); run_turn
                # handled the cancel, so stop here rather than start a retry.
                if reply.status in ("complete", "interrupted"):
                    break
            results[index] = reply
            if on_done is not None:
                on_done(reply)

    await asyncio.gather(*(one(i, item) for i, item in enumerate(items)))
    return [r for r in results if r is not None]


def _ignore(_event) -> None:
    return None


def _copy_request(base, message: str, schema: Any):
    from dataclasses import replace

    return replace(base, message=message, schema=schema, stateless=True)


def run_map(agent: "Agent", items: Any, *, schema: Any, prompt: str | None, concurrency: int,
            retries: int, tools: bool, progress: bool, model: str | None):
    """The synchronous ``agent.map``: runs on the store's loop thread, shows a progress bar."""
    values, index, kind = _inputs(items)
    if not values:
        return [] if kind == "list" else _frame([], index, schema)
    bar = _progress(len(values), agent.name) if progress else None

    def done(_reply: Reply) -> None:
        if bar is not None:
            bar.update(1)

    future = agent.store.runtime.loop.submit(amap(
        agent, values, schema=schema, prompt=prompt, concurrency=concurrency,
        retries=retries, tools=tools, model=model, on_done=done))
    try:
        while True:
            try:
                replies = future.result(timeout=0.1)
                break
            except TimeoutError:
                continue
            except Exception as exc:
                import concurrent.futures

                if isinstance(exc, concurrent.futures.TimeoutError):
                    continue
                raise
    except KeyboardInterrupt:
        future.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
    if kind == "list":
        return replies
    return _frame(replies, index, schema)


def _progress(total: int, name: str):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with agentnb[pandas]
        return None
    return tqdm(total=total, desc=f"{name}.map", unit="item")


def _frame(replies: list[Reply], index, schema: Any):
    import pandas as pd

    rows = []
    for r in replies:
        row: dict[str, Any] = {"text": r.text}
        if schema is not None:
            data = r.data
            fields = getattr(schema, "model_fields", None)
            if fields:
                for name in fields:
                    row[name] = getattr(data, name, None) if data is not None else None
            else:
                row["data"] = data
        row.update({
            "status": r.status,
            "error": r.error,
            "input_tokens": r.usage.input_tokens,
            "output_tokens": r.usage.output_tokens,
            "tool_calls": len(r.tool_calls),
        })
        rows.append(row)
    return pd.DataFrame(rows, index=index if index is not None and len(index) == len(rows) else None)
