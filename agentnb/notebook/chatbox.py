"""``ChatInput``: the chat panel's message box, where Enter sends and Shift+Enter is a new line.

ipywidgets' ``Textarea`` reports only its value, never which key was pressed,
so a panel built on it cannot tell Enter from Shift+Enter (the old panel sent
on a newline typed at the end and made "\\ + Enter" a line break, which left
layout characters in messages). This box is an anywidget: a ``<textarea>``
whose few lines of JavaScript handle the keys as every chat box does:

* **Enter** sends the text: the box empties and one state update carries both
  the empty ``value`` and the ``submission`` (the text as the box showed it).
  One update, not a value change plus a custom message: ipywidgets holds back
  state updates while the kernel is busy and sends custom messages at once,
  so a separate message would overtake the value it belongs with;
* **Shift+Enter** inserts a new line (the browser's own behaviour), and so do
  Ctrl/Alt+Enter; Enter while an input method composes is left to it;
* every key stays in the box: JupyterLab's shortcuts (Shift+Enter runs the
  cell, Escape leaves edit mode) do not see them.

anywidget runs the same module in JupyterLab, Notebook 7, VS Code and Colab,
and ships its front end in its wheel (no labextension of ours to build).
"""

from __future__ import annotations

from typing import Any, Callable

import anywidget
import traitlets

_ESM = r"""
function render({ model, el }) {
  const box = document.createElement("textarea");
  box.className = "agentnb-chatbox-textarea";
  box.rows = model.get("rows");
  box.placeholder = model.get("placeholder");
  box.value = model.get("value");
  box.disabled = model.get("disabled");
  box.spellcheck = true;
  Object.assign(box.style, {
    width: "100%", boxSizing: "border-box", resize: "vertical", minHeight: "2.6em",
    font: "inherit", fontFamily: "var(--jp-ui-font-family, sans-serif)",
    fontSize: "var(--jp-ui-font-size1, 13px)", padding: "4px 6px",
    color: "var(--jp-ui-font-color1, #000)",
    background: "var(--jp-layout-color0, #fff)",
    border: "1px solid var(--jp-border-color1, #bbb)", borderRadius: "2px",
  });
  const sync = () => {
    if (model.get("value") !== box.value) {
      model.set("value", box.value);
      model.save_changes();
    }
  };
  box.addEventListener("input", sync);
  let sent = 0;
  box.addEventListener("keydown", (event) => {
    // keys typed here are the message's: no notebook shortcut may act on them
    event.stopPropagation();
    if (event.key !== "Enter" || event.isComposing || event.keyCode === 229) return;
    if (event.shiftKey || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();  // Enter sends; it is not a new line in the message
    const text = box.value;
    box.value = "";
    sent += 1;
    model.set("value", "");
    model.set("submission", { text, id: `${Date.now()}-${sent}` });
    model.save_changes();
  });
  // JupyterLab also listens for keyup/keypress on the notebook
  for (const name of ["keyup", "keypress"]) {
    box.addEventListener(name, (event) => event.stopPropagation());
  }
  model.on("change:value", () => {
    if (box.value !== model.get("value")) box.value = model.get("value");
  });
  model.on("change:placeholder", () => { box.placeholder = model.get("placeholder"); });
  model.on("change:disabled", () => { box.disabled = model.get("disabled"); });
  model.on("change:rows", () => { box.rows = model.get("rows"); });
  model.on("msg:custom", (msg) => {
    if (msg && msg.type === "focus") box.focus();
  });
  el.classList.add("agentnb-chatbox");
  el.appendChild(box);
}
export default { render };
"""


class ChatInput(anywidget.AnyWidget):
    """A multi-line message box: Enter sends (``on_submit`` callbacks), Shift+Enter is a new line.

    ``value`` is the text in the box, synced as the user types. Python code
    (and tests) can press Enter with :meth:`press_enter`, which goes through
    the same path as the browser's message.
    """

    _esm = _ESM
    value = traitlets.Unicode("", help="the text in the box").tag(sync=True)
    placeholder = traitlets.Unicode("", help="the hint shown while the box is empty").tag(
        sync=True)
    disabled = traitlets.Bool(False, help="no typing").tag(sync=True)
    rows = traitlets.Int(3, help="visible lines").tag(sync=True)
    #: the last Enter: ``{"text": ..., "id": ...}`` (set by the front end)
    submission = traitlets.Dict(help="the text sent by the last Enter").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._submit_handlers: list[Callable[[str], None]] = []
        self._presses = 0
        self.observe(self._submitted, names="submission")

    def on_submit(self, handler: Callable[[str], None]) -> None:
        """Call ``handler(text)`` when the user presses Enter (``text``: the box's text)."""
        self._submit_handlers.append(handler)

    def press_enter(self, text: str | None = None) -> None:
        """What Enter does in the browser: send ``text`` (default: the box's value).

        Applies the same state update the front end sends (through ``set_state``,
        as the widget's comm does).
        """
        self._presses += 1
        self.set_state({"value": "", "submission": {
            "text": self.value if text is None else text, "id": f"py-{self._presses}"}})

    def focus(self) -> None:
        """Put the keyboard focus in the box (in every view of it)."""
        self.send({"type": "focus"})

    def _submitted(self, change: dict) -> None:
        text = (change["new"] or {}).get("text")
        if not isinstance(text, str):
            return
        for handler in list(self._submit_handlers):
            handler(text)


__all__ = ["ChatInput"]
