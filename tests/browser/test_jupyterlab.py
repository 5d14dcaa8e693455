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


class ChatOutput:
    """The output of a ``%%chat`` cell, as a person sees it."""

    def __init__(self, nb: Any, cell: Any) -> None:
        self.nb = nb
        self.root = nb.output(cell).locator(".agentnb-chat")
        try:
            self.root.first.wait_for(state="visible", timeout=30_000)
        except Exception:
            nb.fail("the %%chat cell shows no chat output (no .agentnb-chat), it shows "
                    f"{nb._text(nb.output(cell))!r}")
        self.answer = self.root.locator(".agentnb-chat-answer")
        self.footer = self.root.locator(".agentnb-chat-footer")
        self.cards = self.root.locator(".agentnb-tool-card")

    def wait_status(self, status: str, timeout: float = 60) -> None:
        self.nb.wait_for(self.nb.page.locator(f'.agentnb-chat[data-status="{status}"]').last,
                         f"the %%chat output marked {status!r}", timeout=timeout)

    def words(self) -> int:
        return len(self.answer.last.inner_text().split()) if self.answer.count() else 0


def test_chat_cell_streams_markdown_cards_approval_and_interrupt(notebook):
    """%%chat in JupyterLab: a tool card and Markdown; streaming while the answer grows;
    a tool that needs approval asks at an input prompt; interrupting the kernel keeps
    the partial answer, marked; the next cell carries on."""
    nb = notebook("chat")
    nb.run("%load_ext agentnb")
    nb.run(ADD, step="def-add")
    nb.run("%agent create calc")
    nb.run("%agent tool add")

    # A tool call and its card; the answer as Markdown.
    out = ChatOutput(nb, nb.run("%%chat\nPlease add(a=2, b=3)", step="chat-tool-call"))
    out.wait_status("complete")
    card = out.cards.first
    nb.wait_text(card, "add", "the tool card")
    nb.wait_text(card.locator(".agentnb-tool-status"), "success", "the card's status")
    result = card.locator(".agentnb-tool-result")
    assert not result.is_visible(), "a successful call's result should start folded"
    card.locator("summary").click()  # unfold it, as a person would
    nb.wait_text(result, "5", "the tool's result in the unfolded card")
    nb.wait_text(out.answer.last, "add returned 5.", "the answer after the tool call")
    footer = nb.wait_text(out.footer, "1 tool call", "the footer")
    assert re.search(r"offline · \d+ in / \d+ out tokens", footer), footer
    nb.shot("chat-card-unfolded")

    out = ChatOutput(nb, nb.run("%%chat\nIs **this** bold?", step="chat-markdown"))
    nb.wait_for(out.answer.last.locator("strong"), "the answer's **bold** as <strong>")

    # Streaming: the output grows in place while the cell runs.
    nb.run("_ = %agent set calc model_kwargs.token_delay=0.01")
    cell = nb.run("%%chat\nTell me a story in 400 words", wait=False)
    out = ChatOutput(nb, cell)
    nb.wait_text(out.answer.last, re.compile(r"(\S+\s+){30}"), "the answer streaming in")
    nb.wait_for(out.root.locator('[data-status="streaming"]').or_(
        nb.page.locator('.agentnb-chat[data-status="streaming"]')), "the streaming mark")
    first = out.words()
    nb.shot("chat-streaming")
    out.wait_status("complete")
    nb.wait_done(cell, "the streamed %%chat cell")
    assert first < out.words() == 400, (first, out.words())
    assert nb.output(cell).locator(".agentnb-chat").count() == 1, "one output, updated in place"
    nb.shot("chat-streamed")

    # A tool that needs approval: the cell asks at an input prompt.
    nb.run(WIPE, step="def-wipe")
    nb.run("%agent tool wipe --approve")
    cell = nb.run("%%chat\nwipe(path='x')", wait=False)
    stdin = cell.locator(".jp-Stdin-input")
    nb.wait_for(stdin, "the approval prompt (an input box)")
    nb.wait_text(cell.locator(".jp-Stdin"), "Approve wipe(path='x')? [y/N]", "the question")
    nb.wait_for(cell.locator('.agentnb-tool-card[data-status="awaiting approval"]'),
                "the card awaiting approval")
    nb.shot("chat-approval-asked")
    stdin.fill("y")
    stdin.press("Enter")
    nb.wait_done(cell, "the approved %%chat cell")
    out = ChatOutput(nb, cell)
    out.wait_status("complete")
    nb.wait_for(out.root.locator('.agentnb-tool-card[data-status="success"]'),
                "the approved call's card")
    nb.wait_text(out.answer.last, "wipe returned wiped x", "the answer after approval")
    nb.shot("chat-approved")

    # Interrupt the kernel mid-answer: the partial answer stays, marked.
    cell = nb.run("%%chat\nTell me a story in 5000 words", wait=False)
    out = ChatOutput(nb, cell)
    nb.wait_text(out.answer.last, re.compile(r"(\S+\s+){40}"), "the long answer streaming")
    nb.page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
    item = nb.page.locator('.lm-Menu-item[data-command="kernelmenu:interrupt"]')
    nb.wait_for(item, "the Kernel menu's Interrupt Kernel item", timeout=10)
    item.click()
    nb.wait_done(cell, "the interrupted %%chat cell", allow_stderr=True)
    out.wait_status("interrupted")
    nb.wait_for(out.root.locator(".agentnb-interrupted"), "the 'interrupted' mark")
    nb.wait_text(nb.output(cell), "KeyboardInterrupt", "the interrupt in the cell's output")
    kept = out.words()
    assert 40 <= kept < 5000, kept
    nb.shot("chat-interrupted")
    nb.run("%agent set calc model_kwargs.token_delay=0", step="back-to-fast")
    history = nb.run("%agent history -n 2", step="history-after-interrupt")
    nb.wait_text(nb.output(history), "Tell me a story in 5000 words", "the stored question")
    out = ChatOutput(nb, nb.run("%%chat\nStill there?", step="chat-after-interrupt"))
    out.wait_status("complete")
    nb.wait_text(out.answer.last, 'You said: "Still there?"', "the next answer")


def test_panel_keys_streaming_footer_labels_separator_and_icons(notebook):
    """The panel as a chat box: Shift+Enter is a new line (the cell does not run), Enter
    sends exactly what the box shows; while a turn streams the footer says so; a long
    first message ends with an ellipsis in the session picker, which fits; a line
    separates the pickers from the transcript; the stop mark is an SVG that draws
    without an emoji font; %agent history has no headings."""
    from playwright.sync_api import expect

    nb = notebook("panel-keys")
    nb.run("%load_ext agentnb")
    nb.run("%agent create keys")
    nb.run("_ = %agent set keys model_kwargs.token_delay=0.02")
    panel = Panel(nb, nb.run("%agent panel", step="agent-panel"))
    cells = nb.cells.count()

    first = "A rather long first question about penguins, their islands and bills"
    panel.input.click()
    nb.page.keyboard.type(first)
    nb.page.keyboard.press("Shift+Enter")
    nb.page.keyboard.type("and a second line")
    expect(panel.input).to_have_value(f"{first}\nand a second line")
    assert panel.transcript.locator(".agentnb-msg-user").count() == 0, "Shift+Enter sent"
    assert nb.cells.count() == cells, "Shift+Enter in the panel ran the notebook's cell"
    panel.shot("shift-enter-new-line")
    nb.page.keyboard.press("Enter")
    user = panel.transcript.locator(".agentnb-msg-user").last
    nb.wait_text(user, "and a second line", "the sent two-line message")
    expect(panel.input).to_have_value("")
    panel.wait_idle()
    assert "\\" not in user.inner_text()
    stored = nb.run("from agentnb.notebook.extension import get_magics\n"
                    "m = get_magics()\n"
                    "print(repr([x.content for x in m.store.history(m.current_session)][0]))",
                    step="stored-message")
    nb.wait_text(nb.output(stored), repr(f"{first}\nand a second line"),
                 "the stored message: the box's text, nothing added")

    # the session picker: the long first message ends with "…", and the label fits
    select = panel.root.locator(".agentnb-panel-session select")
    label = select.evaluate("el => el.options[el.selectedIndex].text").replace("\u00a0", " ")
    assert "…" in label and label.split(" · ")[1].endswith("…"), label
    fits = select.evaluate("""el => {
        const ctx = document.createElement('canvas').getContext('2d');
        const style = getComputedStyle(el);
        ctx.font = style.font;
        const text = ctx.measureText(el.options[el.selectedIndex].text).width;
        const room = el.clientWidth - parseFloat(style.paddingLeft)
                     - parseFloat(style.paddingRight);
        return {text, room, overflow: style.textOverflow};
    }""")
    assert fits["overflow"] == "ellipsis", fits
    assert fits["text"] <= fits["room"], f"the session label is clipped: {fits}"

    # a separator under the pickers, above the transcript
    row = panel.root.locator(".agentnb-panel-pickers")
    border = row.evaluate("el => getComputedStyle(el).borderBottomWidth + ' ' + "
                          "getComputedStyle(el).borderBottomStyle")
    assert border == "1px solid", border
    below = panel.transcript.bounding_box()["y"] >= row.bounding_box()["y"] + \
        row.bounding_box()["height"]
    assert below, "the transcript starts above the pickers' separator"

    # while the next turn streams, the footer says so (not the previous turn's figures)
    panel.send("Tell me a story in 2000 words")
    nb.wait_text(panel.assistant.last, re.compile(r"(\S+\s+){20}"), "the story streaming")
    live = nb.wait_text(panel.footer, "streaming…", "the footer while the answer streams")
    assert "last turn:" not in live and "tokens so far" in live, live
    panel.shot("footer-streaming")
    panel.stop_button.click()
    panel.wait_idle()
    footer = nb.wait_text(panel.footer, "session (2 turns)", "the footer after the turn")
    assert "streaming" not in footer, footer

    # the stop mark is an SVG with a size: it draws with no emoji font installed
    mark = panel.transcript.locator(".agentnb-interrupted svg.agentnb-icon-stop")
    nb.wait_for(mark, "the interrupted mark's stop icon")
    box = mark.bounding_box()
    assert box and box["width"] > 4 and box["height"] > 4, box
    panel.shot("stop-icon")

    history = nb.run("%agent history", step="history-no-headings")
    nb.wait_text(nb.output(history), "and a second line", "the history")
    assert nb.output(history).locator("h1, h2, h3, h4, h5, h6").count() == 0, \
        "%agent history shows headings (they fill the table of contents)"
    nb.wait_for(nb.output(history).locator(".agentnb-interrupted svg"),
                "the interrupted mark in %agent history")
