"""A small real MCP server for the tests and the tutorial (built with the mcp SDK's FastMCP).

    python tests/mcp_demo_server.py                 # stdio
    python tests/mcp_demo_server.py --http PORT     # streamable HTTP on 127.0.0.1:PORT/mcp

Tools: multiply, add, pid (the server process's id), shout, fail (an error result),
crash (the process exits during the call) and hang (never answers).
"""

from __future__ import annotations

import os
import sys

from mcp.server.fastmcp import FastMCP

mcp = FastMCP("demo", log_level="WARNING")


@mcp.tool()
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@mcp.tool()
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@mcp.tool()
def pid() -> int:
    """The process id of this server (the tests check that one process serves many calls)."""
    return os.getpid()


@mcp.tool()
def shout(text: str) -> str:
    """The text in capital letters."""
    return text.upper() + "!"


@mcp.tool()
def fail(reason: str = "bad input") -> str:
    """Always fails with the reason given."""
    raise ValueError(f"demo failure: {reason}")


@mcp.tool()
def crash() -> str:
    """The server process exits in the middle of this call."""
    sys.stderr.write("demo server: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(3)


@mcp.tool()
async def hang() -> str:
    """Never answers (for timeouts); the server goes on serving other calls."""
    import anyio

    await anyio.sleep_forever()
    return "never"


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--http":
        mcp.settings.host = "127.0.0.1"
        mcp.settings.port = int(sys.argv[2])
        mcp.run(transport="streamable-http")
    else:
        mcp.run(transport="stdio")
