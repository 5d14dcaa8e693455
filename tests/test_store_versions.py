"""The store's write counters (agentnb/store/versions.py): a turn re-reads nothing that
nothing changed, and still sees every change made by another thread, Store or process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import agentnb
from agentnb.store import repository


def _human_texts(reply_messages) -> list[str]:
    return [m.content for m in reply_messages if m.type == "human"]


class Counting:
    """Counts the queries a turn makes for its freshness reads."""

    def __init__(self, monkeypatch) -> None:
        self.rows = 0
        self.newest = 0
        real_row = repository._duckdb_row
        real_newest = repository.Repository.newest_message_id

        def row(*a, **k):
            self.rows += 1
            return real_row(*a, **k)

        def newest(repo, *a, **k):
            self.newest += 1
            return real_newest(repo, *a, **k)

        monkeypatch.setattr(repository, "_duckdb_row", row)
        monkeypatch.setattr(repository.Repository, "newest_message_id", newest)

    def reset(self) -> None:
        self.rows = self.newest = 0


def test_a_turn_rereads_nothing_that_did_not_change(duckdb_url, monkeypatch):
    """With the file held and nothing written since, the agent, the session and the history
    come from memory: no query (they cost ~1 ms each a turn)."""
    store = agentnb.connect(duckdb_url, idle_release=600)
    agent = store.create_agent("c")
    agent.chat("one")
    agent.chat("two")  # reads what the first turn's new session changed
    counting = Counting(monkeypatch)
    reply = agent.chat("three")
    assert reply.status == "complete"
    assert (counting.rows, counting.newest) == (0, 0)
    # a write that is not a turn (the agent's config) makes the next turn read again
    agent.set(system="Be brief.")
    counting.reset()
    agent.chat("four")
    assert counting.rows >= 1
    assert agent.config.system == "Be brief."
    store.close()


def test_another_store_in_this_process_is_seen_at_once(duckdb_url):
    """Two Stores of one file in one process: each one's writes move the counters the other
    checks (config, a turn into the same session)."""
    first = agentnb.connect(duckdb_url, idle_release=600)
    agent = first.create_agent("c", system="First prompt.")
    agent.chat("one")
    second = agentnb.connect(duckdb_url, idle_release=600)
    second.update_agent("c", system="Second prompt.")
    other = second.agent("c")
    other.resume(agent.session_id)
    other.chat("from the second store")
    reply = agent.chat("two")
    assert agent.config.system == "Second prompt."
    history = first.history(agent.session_id)
    assert [m.content for m in history if m.role == "user"] == [
        "one", "from the second store", "two"]
    assert "turn 3" in reply.text  # the offline model counted the other store's turn
    assert first.session(agent.session_id).updated_at == max(m.created_at for m in history)
    second.close()
    first.close()


def test_another_process_is_seen_at_once(duckdb_url, tmp_path):
    """A process that writes between two turns (the file changes hands): the next turn
    reads the agent, the session and the history again, and sees what it wrote."""
    store = agentnb.connect(duckdb_url, idle_release=600)
    agent = store.create_agent("c", system="First prompt.")
    agent.chat("one")
    script = textwrap.dedent(f"""
        import agentnb
        s = agentnb.connect({duckdb_url!r})
        s.update_agent("c", system="Written elsewhere.")
        a = s.agent("c")
        a.resume()
        assert a.chat("from another process").status == "complete"
        s.close()
    """)
    # the waiting process signals; this one's idle holder lets it in
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=None)
    assert proc.returncode == 0, proc.stderr
    reply = agent.chat("two")
    assert reply.status == "complete"
    assert agent.config.system == "Written elsewhere."
    assert "turn 3" in reply.text
    assert [m.content for m in store.history(agent.session_id) if m.role == "user"] == [
        "one", "from another process", "two"]
    store.close()


@pytest.mark.parametrize("threads", [4])
def test_threads_of_one_store_keep_one_history(duckdb_url, threads):
    """Turns from several threads into one session: every turn in the store, and the
    cached history the next turn builds on is the stored one."""
    from concurrent.futures import ThreadPoolExecutor

    store = agentnb.connect(duckdb_url, idle_release=600)
    agent = store.create_agent("c")
    agent.chat("start")
    sid = agent.session_id

    def one(i: int) -> str:
        handle = store.agent("c")
        handle.resume(sid)
        return handle.chat(f"thread turn {i}").status

    with ThreadPoolExecutor(threads) as pool:
        assert list(pool.map(one, range(3 * threads))) == ["complete"] * (3 * threads)
    reply = agent.chat("last")
    stored = [m.content for m in store.history(sid) if m.role == "user"]
    assert len(stored) == 3 * threads + 2 and stored[-1] == "last"
    assert f"turn {3 * threads + 2}" in reply.text
    store.close()
