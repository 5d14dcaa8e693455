"""Issue 9, item 8: ``usage --by model`` counts each turn for the model that answered it.

It reported ``turns = 0`` for every model (a turn was counted by its user
message, and only assistant messages name a model).
"""

from __future__ import annotations

import json

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agentnb.cli import main


def test_usage_by_model_counts_turns(store, capsys):
    agent = store.create_agent("calc")

    @agent.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    agent.chat("Please add(a=2, b=3)")  # a turn with a tool call: two assistant messages
    agent.chat("hello")
    other = GenericFakeChatModel(messages=iter([AIMessage("from the other model")]))
    agent.chat("and you?", model=other)
    store.create_agent("second").chat("hi")

    rows = {r.key: r for r in store.usage("model")}
    assert rows["offline"].turns == 3
    assert rows["offline"].tool_calls == 1
    others = [r for key, r in rows.items() if key != "offline"]
    assert [r.turns for r in others] == [1]
    # the totals agree with the other groupings
    assert sum(r.turns for r in rows.values()) == sum(r.turns for r in store.usage("agent")) == 4
    assert {r.key: r.turns for r in store.usage("model", agent="second")} == {"offline": 1}


def test_usage_by_model_in_the_cli(tmp_path, capsys, monkeypatch):
    url = f"duckdb:///{tmp_path}/s.duckdb"
    assert main(["--db", url, "agents", "create", "calc"]) == 0
    assert main(["--db", url, "chat", "calc", "hello"]) == 0
    assert main(["--db", url, "chat", "calc", "again"]) == 0
    capsys.readouterr()
    assert main(["--db", url, "usage", "--by", "model", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(row["key"], row["turns"]) for row in data] == [("offline", 2)]
