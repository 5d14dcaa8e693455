"""An MCP server that never starts: it fails before answering, saying why on stderr."""

import sys

sys.stderr.write("starting the broken demo server\n")
sys.stderr.write("RuntimeError: DEMO_CONFIG is missing; cannot start\n")
sys.exit(1)
