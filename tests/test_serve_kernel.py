"""``%agent serve`` in a real kernel (nbclient): a tool defined in the notebook, called over
HTTP from this process while the kernel is idle, stored and visible in ``%agent history``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "notebooks"))


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
        else:
            data = out.get("data", {})
            parts.append(data.get("text/markdown") or data.get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_tool_called_over_http(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from refresh_outputs import kernel_env

    home = tmp_path / "home"
    home.mkdir()
    cells = [
        "%load_ext agentnb",
        "%agent create calc --model offline --system 'You add numbers.'",
        'def secret_add(a: int, b: int) -> int:\n    "Add two integers, the notebook\'s way."'
        "\n    return a + b + 1000",
        "%agent tool secret_add",
        "%agent keys create calc",
        "%agent serve calc --port 0",
        "%agent serve calc --port 0",  # a second one: refused, one line
        "%agent history {session}",
        "%agent serve --stop",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel(env=kernel_env(home)):
        for i in range(6):
            client.execute_cell(nb.cells[i], i)
        key = re.search(r"anb_[A-Za-z0-9_-]{20,}", _text(nb.cells[4])).group(0)
        shown = _text(nb.cells[5])
        url = re.search(r"http://127\.0\.0\.1:\d+", shown).group(0)
        assert "serving calc at" in shown and "from openai import OpenAI" in shown, shown
        assert f'OpenAI(base_url="{url}/v1"' in shown and key not in shown

        # from outside the kernel, while it is idle
        import openai

        sdk = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)
        raw = sdk.chat.completions.with_raw_response.create(
            model="calc", messages=[{"role": "user", "content": "Please secret_add(a=2, b=3)"}])
        assert raw.parse().choices[0].message.content == "secret_add returned 1005."
        session = raw.headers["X-Agentnb-Session"]

        client.execute_cell(nb.cells[6], 6)
        again = _text(nb.cells[6])
        assert "UsageError" in again and "already running at " + url in again, again

        nb.cells[7].source = f"%agent history {session}"
        client.execute_cell(nb.cells[7], 7)
        history = _text(nb.cells[7])
        assert "Please secret_add(a=2, b=3)" in history, history
        assert "secret_add(a=2, b=3) -> success" in history, history
        assert "secret_add returned 1005." in history, history

        client.execute_cell(nb.cells[8], 8)
        assert f"stopped the server at {url}" in _text(nb.cells[8])
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/health", timeout=5)
