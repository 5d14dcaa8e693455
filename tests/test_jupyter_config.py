"""jupyter_config/ipython_config.py: a real kernel with that profile has %agent without %load_ext."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[1] / "jupyter_config" / "ipython_config.py"


def _kernel_env(ipython_dir: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTNB_", "IPYTHONDIR"))}
    env["IPYTHONDIR"] = str(ipython_dir)
    env["AGENTNB_HOME"] = str(home)
    return env


def _profile(tmp_path: Path, text: str) -> Path:
    ipython_dir = tmp_path / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(text, encoding="utf-8")
    return ipython_dir


def _run(ipython_dir: Path, home: Path, code: str, expressions: dict[str, str]) -> tuple[dict, str]:
    """Start the venv's python3 kernel with that IPYTHONDIR, run ``code``, evaluate ``expressions``."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env=_kernel_env(ipython_dir, home),
                              startup_timeout=60)
    streams: list[str] = []

    def keep(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            streams.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            streams.append("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] in ("execute_result", "display_data"):
            streams.append(msg["content"]["data"].get("text/plain", ""))

    try:
        reply = kc.execute_interactive(code, user_expressions=expressions, timeout=60,
                                       output_hook=keep)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    content = reply["content"]
    assert content["status"] == "ok", "".join(streams)
    values = {}
    for name, result in content["user_expressions"].items():
        assert result["status"] == "ok", result
        values[name] = result["data"]["text/plain"]
    return values, "".join(streams)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "agentnb-home"
    path.mkdir()
    return path


def test_profile_loads_agentnb_without_load_ext(tmp_path: Path, home: Path) -> None:
    ipython_dir = _profile(tmp_path, CONFIG.read_text(encoding="utf-8"))
    values, out = _run(
        ipython_dir, home,
        "%agent create helper --template assistant\n%agent list",
        {
            "has_agent": "get_ipython().magics_manager.magics['line'].get('agent') is not None",
            "loaded": "'agentnb' in get_ipython().extension_manager.loaded",
        },
    )
    assert values["has_agent"] == "True"
    assert values["loaded"] == "True"
    # the magic really works, on the store AGENTNB_HOME points at
    assert "helper" in out and "assistant" in out, out
    assert (home / "agentnb.duckdb").exists()


def test_commented_settings_are_valid(tmp_path: Path, home: Path) -> None:
    """Uncommented, every example setting of the file is accepted by the kernel."""
    text = CONFIG.read_text(encoding="utf-8")
    examples = re.findall(r"^# (c\.AgentMagics\.\w+ = .+)$", text, flags=re.MULTILINE)
    assert examples, "the config lists example AgentMagics settings"
    enabled = text + "\n" + "\n".join(examples) + "\n"
    ipython_dir = _profile(tmp_path, enabled)
    names = [re.match(r"c\.AgentMagics\.(\w+)", line).group(1) for line in examples]
    values, out = _run(
        ipython_dir, home, "",
        {name: f"get_ipython().magics_manager.registry['AgentMagics'].{name}" for name in names},
    )
    for line, name in zip(examples, names):
        expected = ast.literal_eval(line.split("=", 1)[1].strip())
        assert ast.literal_eval(values[name]) == expected, (name, values[name], out)


def test_profile_without_agentnb_has_no_agent_magic(tmp_path: Path, home: Path) -> None:
    """The control: the magic comes from the config, not from anything else."""
    ipython_dir = _profile(tmp_path, "c = get_config()\n")
    values, _ = _run(
        ipython_dir, home, "",
        {"has_agent": "get_ipython().magics_manager.magics['line'].get('agent') is not None"},
    )
    assert values["has_agent"] == "False"
