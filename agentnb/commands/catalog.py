"""What agents can be made from: templates and model providers."""

from __future__ import annotations

from typing import Annotated

from ..render.results import KeyValues, Table
from ..text import shorten
from .base import Args, Context, Pos, command


@command("templates list", "list the agent templates (built-in and your own)",
         aliases=("templates",))
def list_templates(ctx: Context, args: Args) -> Table:
    from ..templates import list_templates as templates

    found = templates(ctx.settings)
    return Table(
        ["name", "model", "tools", "memory", "description", "source"],
        [[t.name, t.config.model, list(t.config.tools) or None, t.config.memory.strategy,
          shorten(t.description, 60), t.source] for t in found],
        title=f"templates (use: {ctx.spell('agents create', 'NAME --template T')})",
        empty="(no templates)",
        data=[{"name": t.name, "description": t.description, "source": t.source,
               "model": t.config.model, "config": t.config.model_dump(mode="json")}
              for t in found],
    )


class TemplateArgs(Args):
    name: Annotated[str, Pos("NAME", "the template")]


@command("templates show", "a template's description and config", aliases=("template",))
def show_template(ctx: Context, args: TemplateArgs) -> KeyValues:
    from ..templates import load_template

    t = load_template(args.name, ctx.settings)
    cfg = t.config
    return KeyValues(
        [("name", t.name), ("description", t.description or None), ("source", t.source),
         ("model", cfg.model), ("system", cfg.system or None),
         ("tools", list(cfg.tools) or None), ("memory", cfg.memory.strategy),
         ("max iterations", cfg.max_iterations)],
        title=f"template {t.name}",
        data={"name": t.name, "description": t.description, "source": t.source,
              "model": cfg.model, "config": cfg.model_dump(mode="json")},
    )


@command("models", "list model providers: installed or not, key variable set or not",
         aliases=("models",))
def list_models(ctx: Context, args: Args) -> Table:
    from ..models import list_providers

    providers = list_providers()
    # Say whether a key is set, never what it is.
    return Table(
        ["provider", "package", "installed", "key variable", "key", "example", "install"],
        [[p.name, p.package, p.installed, p.key_env,
          ("set" if p.key_set else "not set") if p.key_env else None, p.example,
          None if p.installed or not p.extra else f"pip install 'agentnb[{p.extra}]'"]
         for p in providers],
        title="model providers (a model spec is provider:model)",
        data=[p.model_dump() for p in providers],
    )
