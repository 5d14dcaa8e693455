"""API key material: generation, hashing, constant-time verification.

A key looks like ``anb_<43 url-safe characters>`` (256 random bits from
:mod:`secrets`). The store keeps only the first characters (to recognise a
key in a listing) and the SHA-256 of the whole key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "anb_"
KEY_BYTES = 32  # 256 bits
#: How many characters of the key are stored in clear, prefix included.
SHOWN_PREFIX_LENGTH = 12


def generate_key() -> str:
    """A new random key, ``anb_`` + 256 bits in URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def hash_key(key: str) -> str:
    """Hex SHA-256 of the key (what the store keeps)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str:
    """The leading characters shown in listings (``anb_`` + 8)."""
    return key[:SHOWN_PREFIX_LENGTH]


def hashes_match(key: str, stored_hash: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    return hmac.compare_digest(hash_key(key), stored_hash)
