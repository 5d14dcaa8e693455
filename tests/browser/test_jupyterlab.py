"""agentnb in real JupyterLab, driven in headless Chromium the way a person uses it.

Each test opens its own notebook (a fresh kernel) on the module's JupyterLab
server; the server's agentnb store is a throwaway directory shared by the
tests, so each test creates agents under its own names. Screenshots of every
step go to ``test-output/browser/<test name>/``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ADD = '''\
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b'''

WIPE = '''\
def wipe(path: str) -> str:
    """Delete everything under path (a pretend one: it only says so)."""
    return f"wiped {path}"'''


class Panel:
    """The ChatPanel widget rendered in a cell's output, as a person sees and uses it."""

    def __init__(self, nb: Any, cell: Any) -> None:
        self.nb = nb
        self.root = cell.locator(".agentnb-panel")
        try:
            self.root.first.wait_for(state="visible", timeout=30_000)
        except Exception:
            nb.fail("the chat panel did not render (no .agentnb-panel in the output, which "
                    f"shows {nb._text(nb.output(cell))!r}); 'Loading widget...' or a plain "
                    "repr means the widget front end (@jupyter-widgets/jupyterlab-manager, "
                    "from jupyterlab_widgets) is missing or the widget's comm never opened")
        self.input = self.root.locator(".agentnb-panel-input textarea")
        self.transcript = self.root.locator(".agentnb-panel-transcript")
        self.footer = self.root.locator(".agentnb-panel-footer")
        self.status = self.root.locator(".agentnb-panel-status")
        self.send_button = self.root.locator("button.agentnb-panel-send")
        self.stop_button = self.root.locator("button.agentnb-panel-stop")
        for part, what in [(self.input, "the message box"), (self.transcript, "the transcript"),
                           (self.send_button, "the Send button"),
                           (self.stop_button, "the Stop button")]:
            nb.wait_for(part, f"the panel's {what}")
        nb.wait_for(self.footer, "the panel's token footer", state="attached")
        self.check()

    @property
    def assistant(self) -> Any:
        return self.transcript.locator(".agentnb-msg-assistant")

    def send(self, text: str) -> None:
        """Click into the message box, type ``text``, press Enter."""
        self.input.click()
        self.nb.page.keyboard.type(text)
        self.nb.page.keyboard.press("Enter")
        # The turn starts: the message shows in the transcript and Stop comes alive.
        self.nb.wait_text(self.transcript.locator(".agentnb-msg-user").last, text,
                          f"the transcript after sending {text!r}", timeout=15)
        self.check()

    def wait_idle(self, timeout: float = 30) -> None:
        """Wait until the turn is over: Stop disabled, Send enabled, no error shown."""
        from playwright.sync_api import expect

        try:
            expect(self.stop_button).to_be_disabled(timeout=timeout * 1000)
            expect(self.send_button).to_be_enabled(timeout=5000)
        except AssertionError:
            self.nb.fail(f"the panel's turn did not end within {timeout:.0f} s "
                         f"(status {self.nb._text(self.status)!r})")
        self.check()

    def check(self) -> None:
        """Fail when the panel shows an error (red status line or error in the transcript)."""
        errors = self.root.locator(".agentnb-error")
        if errors.count():
            self.nb.fail("the chat panel shows an error: " + " / ".join(errors.all_inner_texts()))

    def shot(self, step: str) -> None:
        """A screenshot with the panel's bottom (input, buttons, footer) in view."""
        self.root.evaluate("e => e.scrollIntoView({block: 'end'})")
        self.nb.shot(step)

    def words(self) -> int:
        return len(self.assistant.last.inner_text().split())


def _tokens(footer_text: str) -> tuple[int, int]:
    """(in, out) of the footer's 'last turn: N in / M out tokens'."""
    m = re.search(r"last turn: ([\d,]+) in / ([\d,]+) out", footer_text)
    assert m, f"no last-turn figures in the footer: {footer_text!r}"
    return int(m[1].replace(",", "")), int(m[2].replace(",", ""))


def test_panel_chat_stream_stop_and_free_kernel(notebook):
    """%agent panel: type + Enter, reply and footer; a long answer streams while
    another cell runs; Stop keeps the partial answer, marked interrupted."""
    nb = notebook("panel")
    nb.run("%load_ext agentnb")
    nb.run("%agent create helper")
    # Slow streaming down (the offline model waits 20 ms between tokens): long answers
    # take a minute, time enough to run a cell and to press Stop.
    nb.run("_ = %agent set helper model_kwargs.token_delay=0.02")
    panel = Panel(nb, nb.run("%agent panel", step="agent-panel"))
    nb.wait_text(panel.footer, "session (0 turns)", "the footer of a new panel")

    panel.send("Hello from the browser")
    panel.wait_idle()
    reply = nb.wait_text(panel.assistant.last, 'You said: "Hello from the browser"',
                         "the assistant's reply")
    assert "helper" in reply  # the agent's name heads its messages
    footer = nb.wait_text(panel.footer, "session (1 turn)", "the footer after one turn")
    tokens_in, tokens_out = _tokens(footer)
    assert tokens_in > 0 and tokens_out > 0, footer
    panel.shot("panel-reply")

    # A long, slow answer: the kernel stays free while it streams.
    panel.send("Tell me a story in 3000 words")
    nb.wait_text(panel.assistant.last, re.compile(r"(\S+\s+){40}"),
                 "the long answer streaming in", timeout=30)
    panel.shot("long-answer-streaming")
    before = panel.words()
    cell = nb.run("1+1", step="1+1-while-streaming", timeout=15)  # screenshot: panel above
    nb.wait_text(nb.output(cell), "2", "the output of 1+1 while the panel streams")
    from playwright.sync_api import expect

    expect(panel.stop_button).to_be_enabled()  # the answer is still streaming
    nb.page.wait_for_timeout(500)
    after = panel.words()
    assert after > before, f"the answer stopped growing ({before} -> {after} words)"

    panel.stop_button.click()
    panel.wait_idle()
    nb.wait_for(panel.transcript.locator(".agentnb-interrupted"), "the 'interrupted' mark")
    nb.wait_text(panel.status, "stopped", "the status line after Stop")
    kept = panel.words()
    assert after <= kept < 3000, f"the partial answer has {kept} words"
    footer = nb.wait_text(panel.footer, "session (2 turns)", "the footer after Stop")
    panel.shot("stopped")


def test_panel_approve_and_deny(notebook):
    """A tool registered with --approve waits for Approve / Deny in the panel."""
    nb = notebook("approval")
    nb.run("%load_ext agentnb")
    nb.run(WIPE, step="def-wipe")
    nb.run("%agent create janitor")
    nb.run("%agent tool wipe --approve")
    panel = Panel(nb, nb.run("%agent panel", step="agent-panel"))

    panel.send("wipe(path='x')")
    row = panel.root.locator(".agentnb-approval")
    nb.wait_for(row, "the approval row")
    nb.wait_text(row, "wipe", "the approval question")
    nb.wait_for(panel.transcript.locator('.agentnb-tool-card[data-status="awaiting approval"]'),
                "the tool card awaiting approval")
    panel.shot("approval-asked")
    row.locator("button.agentnb-approve").click()
    panel.wait_idle()
    card = panel.transcript.locator('.agentnb-tool-card[data-status="success"]')
    nb.wait_for(card, "the successful tool card")
    nb.wait_text(card, "wiped x", "the tool's output in its card")
    nb.wait_text(panel.assistant.last, "wipe returned wiped x", "the answer after Approve")
    assert not row.count(), "the approval row stayed after Approve"
    panel.shot("approved")

    panel.send("wipe(path='y')")
    nb.wait_for(row, "the second approval row")
    row.locator("button.agentnb-deny").click()
    panel.wait_idle()
    denied = panel.transcript.locator('.agentnb-tool-card[data-status="denied"]')
    nb.wait_for(denied, "the denied tool card")
    nb.wait_text(denied, "path='y'", "the denied call's arguments")
    nb.wait_text(panel.assistant.last, re.compile("denied", re.I), "the answer after Deny")
    panel.shot("denied")


def test_panel_after_kernel_restart(notebook):
    """Restart the kernel, reopen the panel: the earlier conversation is there."""
    nb = notebook("restart")
    nb.run("%load_ext agentnb")
    nb.run("%agent create memo")
    panel = Panel(nb, nb.run("%agent panel", step="agent-panel"))
    panel.send("Remember the number 42")
    panel.wait_idle()
    nb.wait_text(panel.assistant.last, 'You said: "Remember the number 42"', "the reply")
    panel.shot("before-restart")

    nb.restart_kernel()
    nb.run("%load_ext agentnb")
    panel = Panel(nb, nb.run("%agent panel memo", step="agent-panel-after-restart"))
    nb.wait_text(panel.transcript, "Remember the number 42", "the transcript after restart")
    nb.wait_text(panel.assistant.last, 'You said: "Remember the number 42"',
                 "the earlier reply after restart")
    nb.wait_text(panel.footer, "session (1 turn)", "the footer after restart")
    nb.wait_text(panel.root.locator(".agentnb-panel-session select"),
                 "Remember the number 42", "the session picker after restart")
    panel.shot("earlier-conversation")
    panel.send("And now?")
    panel.wait_idle()
    nb.wait_text(panel.assistant.last, 'You said: "And now?"', "the reply after restart")
    nb.wait_text(panel.footer, "session (2 turns)", "the footer: the session continued")
    panel.shot("continued")
