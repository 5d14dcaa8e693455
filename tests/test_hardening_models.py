"""Issue 9, item 7: a model without tool support on an agent with tools.

The turn ended with the bare text ``NotImplementedError``; now it ends as an
error that says what is wrong and what to do, is stored, and the next turn
(with a model that can call tools) works.
"""

from __future__ import annotations

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage


def test_a_model_without_bind_tools_says_what_to_do(duck_store):
    agent = duck_store.create_agent("calc")

    @agent.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    plain = GenericFakeChatModel(messages=iter([AIMessage("never reached")]))
    reply = agent.chat("add(a=1, b=2)", model=plain)
    assert reply.status == "error"
    assert reply.error != "NotImplementedError"
    for fragment in ("cannot call tools", "GenericFakeChatModel", "'calc'", "add",
                     "remove its tools"):
        assert fragment in reply.error
    assert "\n" not in reply.error
    stored = duck_store.history(reply.session_id)
    assert [(m.role, m.status) for m in stored] == [("user", "complete"), ("assistant", "error")]
    assert "cannot call tools" in stored[-1].attrs["error"]
    # without tools the same model answers; the agent's own model still calls tools
    assert agent.chat("hi", model=GenericFakeChatModel(messages=iter([AIMessage("ok")])),
                      tools=False).text == "ok"
    assert agent.chat("add(a=1, b=2)").tool_calls[0].output == "3"
