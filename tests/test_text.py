"""The shared text rules (agentnb/text.py): one behaviour each, whatever the front end."""

from __future__ import annotations

import pytest

from agentnb import text
from agentnb.errors import error_text


def test_shorten_one_line_and_ellipsis():
    assert text.shorten("a\n  b\tc", 60) == "a b c"
    assert text.shorten("x" * 10, 5) == "xxxx…"
    assert text.shorten(None) == ""


def test_excerpt_quotes_a_short_piece():
    assert text.excerpt("abc") == "'abc'"
    assert text.excerpt("x" * 100, 10) == "'xxxxxxxxx…'"
    assert "\n" not in text.excerpt("a\nb")


def test_clip_keeps_error_lines_short_and_on_one_line():
    long = "0" * 24_000
    clipped = text.clip(f"invalid agent name '{long}': use a letter")
    assert long not in clipped and len(clipped) < 120 and clipped.endswith("': use a letter")
    assert text.clip("a\nb") == "a; b"
    path = "/home/someone/projects/" + "deep/" * 10 + "config.toml"
    assert text.clip(f"{path}: unknown setting") == f"{path}: unknown setting"
    deeper = "/very/" + "deep/" * 60 + "config.toml"
    assert text.clip(f"{deeper}: unknown").startswith("…")
    assert text.clip(f"{deeper}: unknown").endswith("config.toml: unknown")
    assert len(text.clip("word " * 500)) <= 400


@pytest.mark.parametrize("name, secret", [
    ("api_key", True), ("OPENAI_API_KEY", True), ("access_token", True), ("password", True),
    ("sslpassword", True), ("client_secret", True), ("token", True),
    ("api_key_env", False), ("max_tokens", False), ("token_delay", False),
    ("temperature", False), ("private_key_path", False), ("keep_alive", False),
])
def test_looks_like_secret(name, secret):
    assert text.looks_like_secret(name) is secret


def test_did_you_mean_and_args_text():
    assert text.did_you_mean("crate", ["create", "delete"]) == "create"
    assert text.did_you_mean("zzz", ["create"]) is None
    assert text.args_text({"a": 2, "b": "x"}) == "a=2, b='x'"


def test_interpolate_keeps_unknown_braces():
    ns = {"x": 3, "d": {"k": "v"}}
    assert text.interpolate("{x} {d[k]} {{}} {nope} {\"json\": 1}", ns) == \
        '3 v {} {nope} {"json": 1}'


def test_error_text():
    from agentnb.errors import UserError

    assert error_text(UserError("no agent named 'x'")) == "no agent named 'x'"
    assert error_text(ValueError("bad\nthing")) == "ValueError: bad; thing"
    assert error_text(KeyError()) == "KeyError"
