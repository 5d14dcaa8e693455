"""The layers of the package hold: import-linter's contracts in pyproject.toml, and the
command layer is the only implementation of each command (the CLI and %agent share it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: lint-imports in a fresh interpreter (no cache: the tree under test is what is read)
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(no_cache=True, no_logo=True))"]


def test_import_contracts_hold():
    """lint-imports (import-linter) over agentnb: layers, no cycles, no store in front ends."""
    result = subprocess.run(
        LINT,
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout


def test_a_broken_layer_would_be_caught(tmp_path):
    """The contracts can fail: a copy of the package where the store imports a front end."""
    import shutil

    copy = tmp_path / "src"
    shutil.copytree(ROOT / "agentnb", copy / "agentnb",
                    ignore=shutil.ignore_patterns("__pycache__"))
    bad = copy / "agentnb" / "store" / "ids.py"
    bad.write_text(bad.read_text() + "\nfrom agentnb import cli  # noqa\n")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    result = subprocess.run(
        LINT,
        cwd=copy, capture_output=True, text=True, timeout=300,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "agentnb.store is not allowed to import agentnb.cli" in result.stdout


def test_front_ends_define_no_commands_of_their_own():
    """cli.py and the notebook's dispatcher hold no command handlers: every command the CLI
    and %agent offer comes from agentnb.commands (one definition each)."""
    from agentnb.cli import build_parser
    from agentnb.commands import REGISTRY

    parser = build_parser()

    def leaves(p, prefix=()):
        import argparse

        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    command = sub.get_default("command")
                    if command is not None:
                        yield (*prefix, name), command
                    yield from leaves(sub, (*prefix, name))

    found = dict(leaves(parser))
    assert found, "no CLI commands"
    for path, command in found.items():
        assert command is REGISTRY[command.id], path
    cli_ids = {c.id for c in found.values()}
    assert cli_ids == {c.id for c in REGISTRY.values() if "cli" in c.fronts}
