"""API keys: shown once, stored as prefix + SHA-256, verified, revoked."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from agentnb.errors import NotFoundError
from agentnb.store import keys as keymat


def test_key_format_and_entropy():
    key = keymat.generate_key()
    assert key.startswith("anb_")
    # 32 random bytes in URL-safe base64: 43 characters, >= 256 bits
    assert len(key) - len("anb_") == 43
    assert len({keymat.generate_key() for _ in range(200)}) == 200


def test_only_prefix_and_hash_are_stored(store):
    store.create_agent("calc")
    new = store.create_key("calc", name="ci")
    assert new.key.startswith("anb_")
    assert new.record.key_prefix == new.key[:12]
    with store._db.read() as conn:
        row = conn.execute(sa.text("select * from api_keys")).one()._mapping
    assert row["key_hash"] == hashlib.sha256(new.key.encode()).hexdigest()
    dumped = " ".join(str(v) for v in row.values())
    assert new.key not in dumped
    assert new.key not in repr(store.keys())


def test_verify_marks_last_used_and_revoke(store):
    store.create_agent("calc")
    new = store.create_key("calc")
    assert store.keys()[0].last_used_at is None
    rec = store.verify_key(new.key)
    assert rec is not None and rec.id == new.record.id
    assert store.keys()[0].last_used_at is not None
    assert store.verify_key(new.key[:-1] + ("A" if new.key[-1] != "A" else "B")) is None
    assert store.verify_key("not-a-key") is None
    revoked = store.revoke_key(str(new.record.id)[:8])
    assert revoked.is_active is False
    assert store.verify_key(new.key) is None


def test_keys_per_agent(store):
    store.create_agent("a")
    store.create_agent("b")
    store.create_key("a")
    store.create_key("b")
    store.create_key("b")
    assert len(store.keys("a")) == 1 and len(store.keys("b")) == 2 and len(store.keys()) == 3
    with pytest.raises(NotFoundError):
        store.create_key("nobody")
    with pytest.raises(NotFoundError):
        store.revoke_key("00000000")


def test_constant_time_compare_used(store, monkeypatch):
    assert keymat.hashes_match("anb_x", keymat.hash_key("anb_x"))
    assert not keymat.hashes_match("anb_y", keymat.hash_key("anb_x"))
    # verify_key's final comparison goes through hmac.compare_digest
    import hmac

    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keymat.hmac, "compare_digest", spy)
    store.create_agent("calc")
    new = store.create_key("calc")
    assert store.verify_key(new.key) is not None
    assert compared == [(keymat.hash_key(new.key), keymat.hash_key(new.key))]
