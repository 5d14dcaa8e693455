"""End-to-end harness: one JupyterLab server and one headless Chromium per test module.

Module scope, not session scope: while Playwright's sync API is started it keeps
its asyncio loop marked as running in the main thread, so every ``asyncio.run()``
in a later test of the same pytest process would fail ("cannot be called from a
running event loop"). The browser and the server end with the module's last test.

The browser tests drive JupyterLab the way a person does: open a notebook,
type into a cell, press Shift+Enter, click buttons, read what is on screen.
They need Debian's ``chromium`` (``/usr/bin/chromium``; another binary via
``AGENTNB_CHROMIUM``) and Playwright's Python package, which drives that binary
through ``executable_path`` (``playwright install`` is never needed).

``AGENTNB_BROWSER_TESTS``:

* ``1`` (CI): the browser tests must run; a missing browser or package fails them;
* ``0``: skip them;
* unset: run them when Chromium and Playwright are there, else skip with the reason.

Everything the server and its kernels write goes to temporary directories:
``AGENTNB_HOME`` (the agentnb store), the Jupyter config, data, runtime,
settings and workspace dirs and ``IPYTHONDIR``, so neither ``~/.agentnb`` nor a
user's Jupyter or IPython setup plays a part. Each test writes numbered
screenshots to ``test-output/browser/<test name>/`` (git-ignored), plus the
browser console log; the server's log is ``test-output/browser/jupyter-server.log``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "browser"
CHROMIUM = os.environ.get("AGENTNB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
#: JupyterLab user settings for the test server: no news toast, no update check, and
#: every cell in the DOM (no windowing), so cells are found by their index.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
#: Browser console errors that mean our front end is broken (other extensions' noise is
#: only logged): the widget manager, a comm, a widget model or view.
CONSOLE_FAILURE = re.compile(r"widget|\bcomm\b|agentnb", re.IGNORECASE)
STDERR = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
WIDGET_ERROR = ".jupyter-widgets-error-widget"
BROWSER_DIR = Path(__file__).resolve().parent


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed"
    return None


def _required() -> bool:
    return os.environ.get("AGENTNB_BROWSER_TESTS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    flag = os.environ.get("AGENTNB_BROWSER_TESTS")
    if flag == "1":
        return
    reason = "AGENTNB_BROWSER_TESTS=0" if flag == "0" else _missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"browser tests skipped: {reason}")
    for item in items:
        if BROWSER_DIR in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# -- the server --------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, notebook directory and log."""

    proc: subprocess.Popen
    url: str
    token: str
    root: Path
    home: Path
    log: Path

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every session and kernel (each test starts with a fresh kernel)."""
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}")
            for kernel in self.api("GET", "/api/kernels"):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
        except (urllib.error.URLError, OSError):
            pass

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _server_env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AGENTNB_", "JUPYTER", "IPYTHON"))}
    dirs = {
        "AGENTNB_HOME": base / "agentnb-home",
        "JUPYTER_CONFIG_DIR": base / "jupyter-config",
        "JUPYTER_DATA_DIR": base / "jupyter-data",
        "JUPYTER_RUNTIME_DIR": base / "jupyter-runtime",
        "JUPYTERLAB_SETTINGS_DIR": base / "lab-settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "lab-workspaces",
        "IPYTHONDIR": base / "ipython",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        target = dirs["JUPYTERLAB_SETTINGS_DIR"] / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    # The venv's scripts first, so anything the server spawns by name is the venv's.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """JupyterLab from this environment on 127.0.0.1, a free port and a random token."""
    if _required() and (reason := _missing()):
        pytest.fail(f"AGENTNB_BROWSER_TESTS=1 but {reason}", pytrace=False)
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    root.mkdir()
    env = _server_env(base)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    log = OUTPUT / "jupyter-server.log"
    token = secrets.token_hex(16)
    port = _free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # the server refuses to start as root without it
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    server = LabServer(proc, f"http://127.0.0.1:{port}", token, root,
                       Path(env["AGENTNB_HOME"]), log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode} before it answered:"
                            f"\n{server.log_tail()}", pytrace=False)
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {server.url} within 90 s:"
                                f"\n{server.log_tail()}", pytrace=False)
                time.sleep(0.25)
        yield server
    finally:
        server.shutdown_kernels()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- the browser -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(lab: LabServer) -> Any:
    """Debian's Chromium, headless, driven by Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    try:
        yield chromium
    finally:
        try:
            chromium.close()
        finally:
            pw.stop()  # gives the main thread's asyncio back (see the module docstring)


# -- a notebook in a page ----------------------------------------------------------------
@dataclass
class Notebook:
    """One notebook open in JupyterLab, and the steps a person takes in it.

    Every step that changes the screen saves ``NN-step.png`` in ``outdir``; a
    missing element or an error in an output fails the test with a message and
    a screenshot of what was on screen.
    """

    page: Any
    lab: LabServer
    name: str
    outdir: Path
    console: list[str] = field(default_factory=list)
    steps: int = 0

    # -- evidence --------------------------------------------------------------------
    def shot(self, step: str) -> Path:
        self.steps += 1
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", step).strip("-")[:60]
        path = self.outdir / f"{self.steps:02d}-{slug}.png"
        self.page.screenshot(path=str(path))
        return path

    def fail(self, message: str) -> NoReturn:
        path = self.shot("FAILED")
        # "from None": a timeout caught on the way here is not part of the story.
        raise pytest.fail.Exception(f"{message}\n(screenshot: {path})", pytrace=False) from None

    # -- the kernel --------------------------------------------------------------------
    @property
    def kernel_status(self) -> Any:
        # The status bar item "Python 3 (ipykernel) | Idle".
        return self.page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]')

    def wait_idle(self, timeout: float = 60) -> None:
        from playwright.sync_api import expect

        try:
            expect(self.kernel_status).to_have_text(re.compile(r"\|\s*Idle\s*$"),
                                                    timeout=timeout * 1000)
        except AssertionError:
            self.fail(f"the kernel was not idle within {timeout:.0f} s "
                      f"(status bar: {self._text(self.kernel_status)!r})")

    def restart_kernel(self) -> None:
        """Kernel menu > Restart Kernel…, confirm, wait until the new kernel is idle."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
        item = self.page.locator('.lm-Menu-item[data-command="kernelmenu:restart"]')
        self.wait_for(item, "the Kernel menu's Restart Kernel… item", timeout=10)
        item.click()
        accept = self.page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
        self.wait_for(accept, "the Restart Kernel dialog's Restart button", timeout=10)
        self.shot("restart-dialog")
        accept.click()
        try:  # see the restart happen before waiting for idle again
            self.page.wait_for_function(
                "el => !/Idle\\s*$/.test(el.textContent)",
                arg=self.kernel_status.element_handle(), timeout=5000)
        except Exception:
            pass
        self.wait_idle()
        self.shot("kernel-restarted")

    # -- cells --------------------------------------------------------------------------
    @property
    def cells(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def run(self, source: str, *, step: str | None = None, wait: bool = True,
            timeout: float = 60, allow_stderr: bool = False) -> Any:
        """Type ``source`` into the last (empty) cell, press Shift+Enter, wait for the result.

        Returns the cell's locator. With ``wait`` the cell must finish within
        ``timeout`` seconds without an error or stderr output (unless
        ``allow_stderr``) and a screenshot is saved.
        """
        index = self.cells.count() - 1
        cell = self.cells.nth(index)
        editor = cell.locator(".cm-content")
        self.wait_for(editor, f"the editor of cell {index}", timeout=10)
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        # insert_text puts the text in as one edit: no auto-indent or bracket closing.
        self.page.keyboard.insert_text(source)
        self.page.keyboard.press("Shift+Enter")
        label = step or source.splitlines()[0]
        if wait:
            self.wait_done(cell, label, timeout=timeout, allow_stderr=allow_stderr)
            self.shot(label)
        return cell

    def wait_done(self, cell: Any, label: str, *, timeout: float = 60,
                  allow_stderr: bool = False) -> None:
        """Wait until ``cell`` shows an execution count; fail on an error in its output."""
        from playwright.sync_api import expect

        prompt = cell.locator(".jp-InputArea-prompt")
        try:
            expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=timeout * 1000)
        except AssertionError:
            self.fail(f"cell {label!r} did not finish within {timeout:.0f} s "
                      f"(prompt {self._text(prompt)!r}, output {self._text(cell)!r})")
        self.check_output(cell, label, allow_stderr=allow_stderr)

    def check_output(self, cell: Any, label: str, *, allow_stderr: bool = False) -> None:
        """Fail when the cell's output holds a traceback, stderr or a broken widget."""
        errors = cell.locator(STDERR)
        if errors.count() and not allow_stderr:
            self.fail(f"cell {label!r} printed an error:\n" +
                      "\n".join(errors.all_inner_texts()))
        broken = cell.locator(WIDGET_ERROR).or_(
            cell.locator(".jp-OutputArea-output", has_text="Error displaying widget"))
        if broken.count():
            self.fail(f"cell {label!r}: a widget failed to render: "
                      f"{' / '.join(broken.all_inner_texts())}")

    def output(self, cell: Any) -> Any:
        return cell.locator(".jp-OutputArea")

    # -- waiting for things on screen -------------------------------------------------
    def wait_for(self, locator: Any, what: str, *, timeout: float = 30,
                 state: str = "visible") -> Any:
        """Wait until ``locator`` is visible (or ``state``); fail naming ``what``."""
        try:
            locator.first.wait_for(state=state, timeout=timeout * 1000)
        except Exception:
            self.fail(f"{what} was not {state} within {timeout:.0f} s "
                      f"(locator: {locator})")
        return locator

    def wait_text(self, locator: Any, pattern: str | re.Pattern, what: str, *,
                  timeout: float = 30) -> str:
        """Wait until ``locator``'s text contains ``pattern`` (str or regex); its text."""
        from playwright.sync_api import expect

        if not isinstance(pattern, re.Pattern):
            # Widgets render some spaces as no-break spaces (a Dropdown's options do).
            pattern = re.compile(r"[\s\u00a0]+".join(re.escape(w) for w in pattern.split(" ")))
        expected = pattern
        try:
            expect(locator.first).to_contain_text(expected, timeout=timeout * 1000)
        except AssertionError:
            self.fail(f"{what}: expected {expected.pattern!r} within {timeout:.0f} s, "
                      f"saw {self._text(locator)!r}")
        return locator.first.inner_text()

    @staticmethod
    def _text(locator: Any) -> str:
        try:
            text = locator.first.inner_text(timeout=1000)
        except Exception:
            return "(no such element)"
        return text if len(text) < 1500 else text[:1500] + " …"


def _write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    # Without a kernelspec JupyterLab asks for a kernel in a dialog that blocks every click.
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells + [""]]
    nbformat.write(nb, str(path))


@pytest.fixture
def notebook(request: pytest.FixtureRequest, lab: LabServer, browser: Any) -> Any:
    """``notebook(name)`` opens a new notebook ``name.ipynb`` with a fresh kernel."""
    outdir = OUTPUT / request.node.name
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    context = browser.new_context(viewport={"width": 1280, "height": 1100})
    context.set_default_timeout(30_000)
    opened: list[Notebook] = []

    def open_notebook(name: str, cells: list[str] | None = None) -> Notebook:
        _write_notebook(lab.root / f"{name}.ipynb", cells or [])
        page = context.new_page()
        nb = Notebook(page, lab, name, outdir)
        page.on("console", lambda m: nb.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: nb.console.append(f"[pageerror] {e}"))
        opened.append(nb)
        # A workspace of its own, so JupyterLab does not restore an earlier test's tabs.
        page.goto(f"{lab.url}/lab/workspaces/{name}/tree/{name}.ipynb?reset&token={lab.token}")
        nb.wait_for(nb.cells, "the notebook's first cell", timeout=60)
        panels = page.locator(".jp-NotebookPanel").count()
        if panels != 1:
            nb.fail(f"expected one open notebook, JupyterLab shows {panels}")
        # Fold the file browser away: the screenshots show more of the notebook.
        current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if current.count():
            current.first.click()
        nb.wait_idle(timeout=90)
        nb.shot("opened")
        return nb

    yield open_notebook

    failed = any(getattr(request.node, f"rep_{when}", None) is not None
                 and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
    for nb in opened:
        if failed:
            try:
                nb.shot("at-failure")
            except Exception:
                pass
        (outdir / f"console-{nb.name}.log").write_text("\n".join(nb.console) + "\n")
    if failed:
        (outdir / "jupyter-server-tail.log").write_text(lab.log_tail(200) + "\n")
    context.close()
    lab.shutdown_kernels()
    broken = [line for nb in opened for line in nb.console
              if line.startswith(("[error]", "[pageerror]"))
              and CONSOLE_FAILURE.search(line.splitlines()[0])]
    if broken and not failed:
        pytest.fail("the browser console shows widget errors:\n" + "\n".join(broken[:10]),
                    pytrace=False)
