"""The wheel ships the migrations and templates, and they run from it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "TMPDIR": str(build)},
    )
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("agentnb-*.whl")
    return whl


def test_wheel_contains_migrations_and_templates(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in [
        "agentnb/migrations/env.py",
        "agentnb/migrations/script.py.mako",
        "agentnb/migrations/versions/0001_initial.py",
        "agentnb/templates/assistant.toml",
        "agentnb/templates/data-analyst.toml",
        "agentnb/tutorials/01-quickstart.ipynb",  # for `agentnb tutorials`
    ]:
        assert required in names, required
    assert any(n.endswith("entry_points.txt") for n in names)
    assert not any(n.startswith("tests/") or n.endswith(".duckdb") for n in names)


def test_store_created_from_the_installed_wheel(wheel, tmp_path):
    """Unpacked wheel first on sys.path: migrations come from it, not from the repository."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        import agentnb
        from agentnb.store import migrate
        assert agentnb.__file__.startswith({str(site)!r}), agentnb.__file__
        assert str(migrate.script_location()).startswith({str(site)!r})
        store = agentnb.connect("duckdb:///{tmp_path}/w.duckdb")
        print(store.init().after)
        store.create_agent("x", template="assistant")
        print([a.name for a in store.agents()])
        store.close()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0003", "['x']"]
