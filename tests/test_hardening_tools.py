"""Issue 9, item 3: a tool (or model) raising a BaseException ends as an error, stored.

Before, ``raise KeyboardInterrupt`` in a tool killed the store's loop thread
and ``agent.chat()`` waited forever; a BaseException subclass escaped
``chat()`` and the turn was not stored. Each case runs the turn in a thread,
waits for it to end (a generous join is only a safety net against a hang),
then checks the stored turn and that the next turn works.
"""

from __future__ import annotations

import threading

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel


class Boom(BaseException):
    """Not an Exception: what a careless library might raise."""


RAISED = {
    "KeyboardInterrupt": lambda: KeyboardInterrupt("from the tool"),
    "SystemExit": lambda: SystemExit(3),
    "GeneratorExit": lambda: GeneratorExit(),
    "Boom": lambda: Boom("custom base exception"),
}

SAFETY_NET = 120  # seconds; a turn here takes milliseconds


def _in_thread(fn):
    """Run ``fn`` in a thread; its result or exception, or fail if it never ends."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(SAFETY_NET)
    assert not worker.is_alive(), "the turn never ended (the loop thread died?)"
    if "error" in box:
        raise AssertionError(f"chat() raised {box['error']!r}")
    return box["value"]


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", list(RAISED))
def test_a_tool_raising_a_base_exception_is_a_tool_error(duck_store, name, asynchronous):
    agent = duck_store.create_agent("calc")
    make = RAISED[name]
    if asynchronous:
        async def explode(x: int) -> int:
            """Raise on purpose."""
            raise make()
    else:
        def explode(x: int) -> int:
            """Raise on purpose."""
            raise make()
    agent.tool(explode)

    reply = _in_thread(lambda: agent.chat("please explode(x=1)"))
    assert [(c.tool_name, c.status) for c in reply.tool_calls] == [("explode", "error")]
    assert reply.tool_calls[0].error_message.startswith(name)
    stored = duck_store.history(reply.session_id)
    assert [m.role for m in stored] == ["user", "assistant", "tool", "assistant"]
    again = _in_thread(lambda: agent.chat("hello again"))
    assert again.status == "complete" and "hello again" in again.text


class _FailingModel(GenericFakeChatModel):
    raise_what: str = "Boom"

    def _generate(self, *args, **kwargs):
        raise RAISED[self.raise_what]()

    def _stream(self, *args, **kwargs):
        raise RAISED[self.raise_what]()


@pytest.mark.parametrize("name", ["KeyboardInterrupt", "SystemExit", "Boom"])
def test_a_model_raising_a_base_exception_ends_the_turn_as_an_error(duck_store, name):
    agent = duck_store.create_agent("talk")
    model = _FailingModel(messages=iter([]), raise_what=name)
    reply = _in_thread(lambda: agent.chat("hi", model=model))
    assert reply.status == "error" and name in (reply.error or "")
    assert [(m.role, m.status) for m in duck_store.history(reply.session_id)] == \
        [("user", "complete"), ("assistant", "error")]
    again = _in_thread(lambda: agent.chat("hello again"))
    assert again.status == "complete"
