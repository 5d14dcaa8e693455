"""The README's quickstart command, copy-paste: a working copy of the tutorials in JupyterLab.

The command is read from the README itself and started as it is (as root on CI
machines and containers, where JupyterLab refuses to start without
``--allow-root``), then asked over HTTP whether it serves the quickstart.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agentnb import cli
from agentnb.commands import tutorials

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def readme_quickstart() -> str:
    """The first command of the README (its first ``bash`` block)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)\n```", text, re.DOTALL)
    assert block, "the README has no bash block"
    return block.group(1).strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_first_command_opens_the_tutorials_in_jupyterlab(tmp_path):
    command = readme_quickstart()
    # the install steps ran when this environment was made: start what comes after them
    launch = command.split("&&")[-1].strip()
    argv = shlex.split(launch)
    assert argv[0].startswith(".venv/bin/"), launch
    argv[0] = str(BIN / argv[0].removeprefix(".venv/bin/"))

    token = secrets.token_hex(16)
    port = _free_port()
    config = tmp_path / "jupyter-config"
    config.mkdir()
    # what a reader's machine has no say in here: no browser to open, a free port, a
    # known token (the command line itself is the README's, unchanged)
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "ServerApp": {"open_browser": False, "ip": "127.0.0.1", "port": port,
                      "port_retries": 0},
        "IdentityProvider": {"token": token},
    }))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTNB_", "JUPYTER", "IPYTHON"))}
    env.update(AGENTNB_HOME=str(tmp_path / "home"), JUPYTER_CONFIG_DIR=str(config),
               JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
               IPYTHONDIR=str(tmp_path / "ipython"), PYTHONUNBUFFERED="1")
    log = tmp_path / "lab.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=ROOT)
    url = f"http://127.0.0.1:{port}"

    def get(path: str):
        request = urllib.request.Request(url + path,
                                         headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (
                f"{launch!r} exited with {proc.returncode} (uid {os.geteuid()}):\n"
                + log.read_text()[-3000:])
            try:
                get("/api/status")
                break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "JupyterLab did not answer in 120 s:\n" \
                    + log.read_text()[-3000:]
                time.sleep(0.25)
        quickstart = get("/api/contents/01-quickstart.ipynb?content=0")
        assert quickstart["type"] == "notebook"
        copy = tmp_path / "home" / "tutorials"
        assert sorted(p.name for p in copy.glob("*.ipynb")) == sorted(
            p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
        page = urllib.request.urlopen(
            urllib.request.Request(f"{url}/lab?token={token}"), timeout=10)
        assert page.status == 200
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("uid, allowed", [(0, True), (1000, False)])
def test_jupyterlab_is_told_to_allow_root_only_as_root(monkeypatch, tmp_path, uid, allowed):
    monkeypatch.setattr(os, "geteuid", lambda: uid)
    argv = tutorials.lab_argv(tmp_path)
    assert ("--allow-root" in argv) is allowed
    assert argv[-1] == str(tmp_path / "01-quickstart.ipynb")


def test_a_second_run_keeps_the_readers_copies(tmp_path, capsys):
    target = tmp_path / "mine"
    assert cli.main(["tutorials", "--no-lab", "--dir", str(target)]) == 0
    copied = sorted(p.name for p in target.glob("*.ipynb"))
    assert "01-quickstart.ipynb" in copied
    assert copied == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    edited = target / "01-quickstart.ipynb"
    edited.write_text(edited.read_text().replace("\"# 1. ", "\"# 1. my notes ", 1))
    capsys.readouterr()
    assert cli.main(["tutorials", "--no-lab", "--dir", str(target), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["copied"] == [] and result["kept"] == copied
    assert "my notes" in edited.read_text()
    assert cli.main(["tutorials", "--no-lab", "--dir", str(target), "--reset"]) == 0
    assert "my notes" not in edited.read_text()
    assert edited.read_bytes() == (ROOT / "notebooks" / "01-quickstart.ipynb").read_bytes()


def test_an_unwritable_folder_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["tutorials", "--no-lab", "--dir", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("agentnb: error: cannot create") and "\n" not in err
