"""``agentnb tutorials``: a working copy of the tutorial notebooks, opened in JupyterLab.

The notebooks of the repository (``notebooks/``, shipped in the wheel as
``agentnb/tutorials``) are the project's executable documentation and are
checked against their stored outputs by the test suite. A reader who runs them
in place would change them (JupyterLab autosaves), so this command copies them
to a folder of the reader's own (default ``AGENTNB_HOME/tutorials``) and starts
JupyterLab there. Notebooks already in that folder are kept as the reader left
them (``--reset`` copies them afresh).

JupyterLab refuses to start as root unless told (``--allow-root``); the
command tells it when it runs as root, so the quickstart works copy-paste in a
container as well as on a laptop.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

from ..errors import UserError
from ..render.results import Notice
from .base import Args, Context, Flag, Opt, command

#: The notebook JupyterLab opens first.
FIRST = "01-quickstart.ipynb"


def tutorial_sources() -> Path:
    """The folder the tutorial notebooks are copied from.

    An installed wheel carries them in ``agentnb/tutorials``; a source checkout
    (``pip install -e .``) has them in the repository's ``notebooks/``.
    """
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "tutorials", package.parent / "notebooks"):
        if any(candidate.glob("[0-9][0-9]-*.ipynb")):
            return candidate
    raise UserError("the tutorial notebooks are not part of this installation; they are in "
                    "the notebooks/ folder of the agentnb repository")


def copy_tutorials(target: Path, *, reset: bool = False) -> tuple[list[str], list[str]]:
    """Copy the tutorials into ``target``; (copied, kept) notebook names.

    A notebook already in ``target`` is the reader's (it may hold their edits
    and outputs): it is kept unless ``reset``.
    """
    source = tutorial_sources()
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {target}: {exc.strerror or exc}; "
                        "give another folder with --dir") from None
    copied, kept = [], []
    for path in sorted(source.glob("[0-9][0-9]-*.ipynb")):
        dest = target / path.name
        if dest.exists() and not reset:
            kept.append(path.name)
            continue
        try:
            shutil.copyfile(path, dest)
        except OSError as exc:
            raise UserError(f"cannot write {dest}: {exc.strerror or exc}") from None
        copied.append(path.name)
    return copied, kept


def lab_argv(target: Path) -> list[str]:
    """The JupyterLab command line that opens the quickstart in ``target``."""
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={target}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # JupyterLab exits at once as root without it ("Running as root is not recommended")
        argv.append("--allow-root")
    argv.append(str(target / FIRST))
    return argv


class TutorialsArgs(Args):
    dir: Annotated[str | None, Opt("--dir", "-d", metavar="DIR",
                                   help="where the working copy goes (default: "
                                        "AGENTNB_HOME/tutorials)")] = None
    reset: Annotated[bool, Flag("--reset", help="copy every notebook afresh, replacing the "
                                "ones in DIR (your changes to them are lost)")] = False
    no_lab: Annotated[bool, Flag("--no-lab", help="only copy the notebooks; do not start "
                                 "JupyterLab")] = False


@command("tutorials", "copy the tutorial notebooks to a folder of your own and open them in "
         "JupyterLab", fronts=("cli",),
         epilog="""
         The repository's notebooks/ stay as they are: you run (and may change) your
         copy. Running the command again keeps the notebooks you have; --reset copies
         them afresh. The notebooks use your store (AGENTNB_HOME).""",
         examples=("{prog}", "{prog} --dir ~/agentnb-tutorials", "{prog} --no-lab"))
def tutorials(ctx: Context, args: TutorialsArgs) -> Notice:
    if args.dir is not None and "\0" in args.dir:
        raise UserError("--dir: a folder name cannot contain a NUL character")
    target = (Path(args.dir).expanduser() if args.dir is not None
              else ctx.settings.home / "tutorials").resolve()
    copied, kept = copy_tutorials(target, reset=args.reset)
    parts = []
    if copied:
        parts.append(f"copied {len(copied)} notebook{'s' if len(copied) != 1 else ''}")
    if kept:
        parts.append(f"kept your {len(kept)} (--reset copies them afresh)")
    notice = Notice(f"tutorials in {target}: {', '.join(parts)}", "success",
                    data={"dir": str(target), "copied": copied, "kept": kept})
    if args.no_lab:
        return notice
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        raise UserError("JupyterLab is not installed here: pip install jupyterlab (or "
                        f"open {target} in your notebook app; --no-lab only copies)") from None
    print(notice.to_text(), file=sys.stderr, flush=True)
    argv = lab_argv(target)
    # JupyterLab takes over this process (its Ctrl-C, its exit status), in the folder
    os.chdir(target)
    os.execv(argv[0], argv)
    raise AssertionError("unreachable")  # pragma: no cover
