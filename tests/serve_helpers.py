"""Helpers of the HTTP tests: a real uvicorn server in this process, or ``agentnb serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import agentnb


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@dataclass
class Served:
    """A store with agents ``calc`` (offline, tool ``add``) and ``other``, and their keys."""

    store: Any
    url: str
    keys: dict[str, str]
    server: Any = None
    ids: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        return {"Authorization": f"Bearer {self.keys[who]}"}


def make_keys(store) -> tuple[dict[str, str], dict[str, str]]:
    keys, ids = {}, {}
    for who, agent, admin in (("calc", "calc", False), ("other", "other", False),
                              ("admin", None, True)):
        new = store.create_key(agent, f"{who}-key", admin=admin)
        keys[who], ids[who] = new.key, str(new.record.id)
    old = store.create_key("calc", "revoked-key")
    store.revoke_key(str(old.record.id))
    keys["revoked"] = old.key
    # well-formed, never issued
    keys["unknown"] = "anb_" + "x" * 43
    keys["malformed"] = "sk-not-an-agentnb-key"
    return keys, ids


def setup_store(url: str):
    store = agentnb.connect(url)
    calc = store.create_agent("calc", model="offline", system="You add numbers.")
    calc.tool(add)
    store.create_agent("other", model="offline")
    store.create_agent("slow", model="offline", model_kwargs={"token_delay": 0.02})
    return store


class ServeProcess:
    """``agentnb serve`` as a subprocess on a free port of 127.0.0.1."""

    def __init__(self, url: str, *args: str, env: dict[str, str] | None = None) -> None:
        cmd = [sys.executable, "-m", "agentnb.cli", "serve", "--db", url, "--port", "0", *args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})}, cwd=Path(__file__).resolve().parents[1])
        self.stderr_lines: list[str] = []
        line = self.proc.stdout.readline()  # "agentnb serve: http://127.0.0.1:PORT (...)"
        if not line.startswith("agentnb serve: http://"):
            out, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"agentnb serve did not start: {line}{out}{err}")
        self.url = line.split()[2]
        self.banner = line
        self.stdout_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,
                                                                 self.stderr_lines), daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read, args=(self.proc.stdout,
                                                                     self.stdout_lines),
                                            daemon=True)
        self._out_reader.start()
        self._wait_ready()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    @property
    def log(self) -> str:
        """What the server wrote so far (uvicorn's access log is on stdout)."""
        return "".join(self.stdout_lines) + "".join(self.stderr_lines)

    def _wait_ready(self) -> None:
        import time

        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("agentnb serve is not answering: "
                                     + "".join(self.stderr_lines))
            time.sleep(0.05)

    def stop(self) -> str:
        """Ctrl-C (SIGINT), as a user stops it; everything it wrote to stderr."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._out_reader.join(timeout=5)
        return "".join(self.stderr_lines)
