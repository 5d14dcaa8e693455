"""``%agent``: the command layer in a notebook (find the command, parse, run, show).

``%agent WORDS ...`` names a command by its notebook alias (``%agent create``,
``%agent set``, ``%agent history``) or by its CLI words (``%agent agents
create``); the rest of the line is parsed with the command's own declaration
(:mod:`agentnb.commands`). A mistake is one ``UsageError`` line. What the
command returns is shown as it is (HTML in a notebook, text in a terminal),
except: a query's rows become a DataFrame, a widget request becomes the chat
panel or the session browser, and a new API key is displayed without being
kept as the cell's result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..commands import base as cmds
from .parsing import user_errors

if TYPE_CHECKING:  # pragma: no cover
    from .magics import AgentMagics

FRONT = "notebook"


def _names() -> dict[tuple[str, ...], cmds.Command]:
    """Every way the notebook names a command: its aliases and its CLI words."""
    names: dict[tuple[str, ...], cmds.Command] = {}
    for cmd in cmds.commands_for(FRONT):
        for alias in cmd.aliases:
            names.setdefault(tuple(alias.split()), cmd)
        names.setdefault(cmd.path, cmd)
    return names


def find_command(line: str) -> tuple[cmds.Command | None, tuple[str, ...], str]:
    """(command, the words that named it, the rest of the line) for a ``%agent`` line."""
    names = _names()
    parts = line.split(None, 2)
    for n in (2, 1):
        key = tuple(parts[:n])
        if len(key) == n and key in names:
            rest = line.split(None, n)[n] if len(line.split(None, n)) > n else ""
            return names[key], key, rest
    # a group alone (``%agent keys``) is its listing
    group = parts[:1]
    if group and (group[0], "list") in names and (len(parts) == 1 or parts[1].startswith("-")):
        rest = line.split(None, 1)[1] if len(parts) > 1 else ""
        return names[(group[0], "list")], (group[0],), rest
    return None, tuple(parts[:2]), line.split(None, 1)[1] if len(parts) > 1 else ""


def _group_commands(word: str) -> list[str]:
    return sorted(" ".join(c.path[1:]) for c in cmds.commands_for(FRONT)
                  if len(c.path) > 1 and c.path[0] == word)


def help_listing() -> str:
    """``%agent help``: every subcommand with its summary."""
    rows = []
    for cmd in cmds.commands_for(FRONT):
        name = cmd.aliases[0] if cmd.aliases else " ".join(cmd.path)
        rows.append((name, cmd.summary))
    width = max(len(n) for n, _ in rows)
    lines = ["%agent SUBCOMMAND [ARGS]  - agents, sessions, tools and the agentnb store", "",
             f"  {'(none)'.ljust(width)}  status: store, current agent and session"]
    lines += [f"  {name.ljust(width)}  {summary}" for name, summary in rows]
    lines += ["", "%agent SUBCOMMAND --help shows a subcommand's arguments.",
              "%%chat [NAME] (a cell magic) sends the cell to an agent: %%chat --help."]
    return "\n".join(lines)


def dispatch(nb: "AgentMagics", line: str) -> Any:
    """Run one ``%agent`` line and return what the cell shows."""
    stripped = line.strip()
    if not stripped:
        stripped = "status"
    word = stripped.split(None, 1)[0]
    if word in ("-h", "--help", "help"):
        rest = stripped.split(None, 1)[1] if " " in stripped else ""
        if rest.strip():
            cmd, _, _ = find_command(rest.strip())
            if cmd is None:
                raise UsageError(_unknown(rest.strip().split()[0]))
            print(cmds.help_text(cmd, FRONT))
        else:
            print(help_listing())
        return None
    cmd, words, rest = find_command(stripped)
    if cmd is None:
        sub = _group_commands(word)
        if sub and len(words) > 1:
            from ..text import did_you_mean, excerpt

            hint = did_you_mean(words[1], sub)
            raise UsageError(
                f"unknown subcommand {excerpt(' '.join(words))}; "
                + (f"did you mean %agent {word} {hint}? " if hint else "")
                + f"choose one of: {', '.join(sub)} (see %agent {word} --help)")
        raise UsageError(_unknown(word))
    prog = "%agent " + " ".join(words)
    with user_errors():
        raw = cmd.raw_field(FRONT)
        if raw is not None:
            text = rest.strip()
            if text in ("-h", "--help"):
                print(cmds.help_text(cmd, FRONT, prog=prog))
                return None
            args = cmds.to_args(cmd, FRONT, {raw: text or None}, prog=prog)
        else:
            tokens = cmds.split_line(rest, prog)
            if cmds.wants_help(tokens):
                print(cmds.help_text(cmd, FRONT, prog=prog))
                return None
            args = cmds.parse_tokens(cmd, FRONT, tokens, prog=prog)
        result = cmds.run(cmd, nb.context(), args)
        return show(nb, result)


def _unknown(word: str) -> str:
    from ..text import excerpt

    hint = cmds.suggest_command(word, FRONT)
    suggestion = f"did you mean %agent {hint}? " if hint else ""
    return (f"unknown subcommand {excerpt(word)}; {suggestion}see %agent help for the list")


def show(nb: "AgentMagics", result: Any) -> Any:
    """What the cell shows for a command's result."""
    from ..commands.analysis import SqlResult
    from ..commands.serve import ServeRequest
    from ..commands.sessions import WidgetRequest
    from ..render.results import SecretNotice

    if isinstance(result, ServeRequest):
        from .serving import serve

        return serve(nb, result)
    if isinstance(result, SqlResult):
        return result.to_frame()
    if isinstance(result, WidgetRequest):
        return _widget(nb, result)
    if isinstance(result, SecretNotice):
        from IPython.display import display

        # Displayed, not returned: a returned value would also stay in Out/_.
        display(result)
        return None
    return result


def _widget(nb: "AgentMagics", request: Any) -> Any:
    if request.kind == "chat_panel":
        from .panel import NEW_SESSION, ChatPanel

        session = request.options.get("session")
        return ChatPanel(store=nb.store, agent=request.options.get("agent"),
                         session=NEW_SESSION if session == "new" else session,
                         rate=nb.stream_rate)
    from .browser import SessionBrowser

    return SessionBrowser(store=nb.store, agent=request.options.get("agent"))


__all__ = ["dispatch", "find_command", "help_listing", "show"]
