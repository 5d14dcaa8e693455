"""An agent's MCP servers: adding, listing, importing them (``agent.mcp``).

The servers live in the agent's config (``mcp_servers``, see
:class:`~agentnb.schemas.McpServerConfig`); this module is the one place that
turns what a user writes into such a config:

* ``--env NAME`` (the server gets ``NAME`` from agentnb's environment) or
  ``--env NAME=VAR`` (the server's ``NAME`` is agentnb's ``VAR``);
* ``--header NAME=VAR`` (the header's value is ``VAR``'s value), or
  ``NAME=Bearer:VAR`` for ``Bearer <value of VAR>``;
* an ``{"mcpServers": {...}}`` file (the format of Claude Desktop,
  notebook-intelligence, Cursor...): ``command``/``args``/``env`` or
  ``url``/``headers``; a value written as ``${VAR}`` (or ``$VAR``,
  ``${env:VAR}``) becomes a reference to ``VAR``; a literal value is never
  stored: it becomes a reference to a variable named after it, with a warning.

Values are read from the environment when the server starts, never stored.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import AlreadyExistsError, InvalidValueError, NotFoundError
from .schemas import MCP_SERVER_PATTERN, McpServerConfig
from .text import did_you_mean, excerpt, looks_like_secret

if TYPE_CHECKING:  # pragma: no cover
    from .agent import Agent

__all__ = ["AgentMcp", "ImportResult", "McpToolInfo", "http_server", "parse_servers",
           "stdio_server"]

_VAR = r"[A-Za-z_][A-Za-z0-9_]*"
#: ``${VAR}``, ``$VAR``, ``${env:VAR}`` (VS Code's spelling): a whole value that names a variable.
_REFERENCE = re.compile(rf"^\$(?:\{{(?:env:)?({_VAR})\}}|({_VAR}))$")
_SCHEMES = ("Bearer", "Basic", "Token")


class McpToolInfo(BaseModel):
    """One tool of an MCP server, as the agent sees it."""

    model_config = ConfigDict(frozen=True)

    name: str  #: the agent's name for it: ``<server>_<tool>``
    server: str
    description: str = ""
    requires_approval: bool = False
    input_schema: dict[str, Any] = Field(default_factory=dict)


class ImportResult(BaseModel):
    """What ``mcp import`` did: the servers added, and what it refused to store."""

    model_config = ConfigDict(frozen=True)

    added: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def _config(server: str, **fields: Any) -> McpServerConfig:
    _check_server_name(server)
    try:
        return McpServerConfig(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidValueError(f"MCP server {server!r}: "
                                + (f"{loc}: " if loc else "") + message) from None


def _check_server_name(server: str) -> None:
    if not isinstance(server, str) or not MCP_SERVER_PATTERN.match(server):
        raise InvalidValueError(f"MCP server name {excerpt(server)} is not usable: a letter, "
                                "then letters, digits, '-' or '_', at most 32 characters")


def _env_pairs(env: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(env, Mapping):
        return {str(k): str(v) for k, v in env.items()}
    out = {}
    for item in env:
        name, sep, source = str(item).partition("=")
        name, source = name.strip(), source.strip()
        if sep and not re.fullmatch(_VAR, source or "-"):
            raise InvalidValueError(
                f"--env {excerpt(item)}: after '=' give the NAME of an environment variable, "
                "not a value (values are never stored; they are read when the server starts)")
        out[name] = source if sep else name
    return out


def _header_pairs(headers: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else (
        str(h).partition("=")[::2] for h in headers)
    out = {}
    for name, source in items:
        name, source = str(name).strip(), str(source).strip()
        scheme, colon, var = source.partition(":")
        if colon and scheme in _SCHEMES:
            template = f"{scheme} ${{{var}}}"
        else:
            var, template = source, f"${{{source}}}"
        if not name or not re.fullmatch(_VAR, var or "-"):
            raise InvalidValueError(
                f"--header {excerpt(name + '=' + source)}: write NAME=VAR (or "
                "NAME=Bearer:VAR), VAR being an environment variable; header values are "
                "never stored")
        out[name] = template
    return out


def stdio_server(server: str, command: str | Sequence[str], args: Sequence[str] = (), *,
                 env: Iterable[str] | Mapping[str, str] = (), approve: bool = False,
                 approve_tools: Sequence[str] = ()) -> McpServerConfig:
    """The config of a stdio server: ``command`` (a list, or one string split like a shell)."""
    words = shlex.split(command) if isinstance(command, str) and not args else (
        [command] if isinstance(command, str) else list(command))
    words += list(args)
    if not words:
        raise InvalidValueError(f"MCP server {server!r}: give the command that starts it "
                                "(after --)")
    return _config(server, transport="stdio", command=words[0], args=words[1:],
                   env=_env_pairs(env), approve=approve, approve_tools=list(approve_tools))


def http_server(server: str, url: str, *, headers: Iterable[str] | Mapping[str, str] = (),
                approve: bool = False, approve_tools: Sequence[str] = ()) -> McpServerConfig:
    """The config of a streamable-HTTP server at ``url``."""
    return _config(server, transport="http", url=url, headers=_header_pairs(headers),
                   approve=approve, approve_tools=list(approve_tools))


# -- the mcpServers format ---------------------------------------------------------------
def _reference(value: Any) -> str | None:
    match = _REFERENCE.match(str(value).strip())
    return (match.group(1) or match.group(2)) if match else None


def _var_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_").upper() or "VALUE"


def _literal_warning(server: str, what: str, key: str, var: str) -> str:
    kind = "a literal secret" if looks_like_secret(key) or looks_like_secret(what) \
        else "a literal value"
    return (f"{server}: {what} {key} held {kind}, which agentnb does not store; it now reads "
            f"${var} from the environment when the server starts (set {var})")


def parse_servers(data: Any) -> tuple[dict[str, McpServerConfig], list[str]]:
    """Servers from an ``{"mcpServers": {...}}`` document, and warnings for what was refused.

    A server that cannot be used (no command or URL, an SSE server, a secret in
    its command line) is left out with a warning; a literal ``env``/``headers``
    value becomes a reference to an environment variable, with a warning.
    """
    if not isinstance(data, Mapping):
        raise InvalidValueError("an MCP config file holds a JSON object with \"mcpServers\"")
    entries = data.get("mcpServers", data.get("servers"))
    if not isinstance(entries, Mapping):
        raise InvalidValueError("no \"mcpServers\" object in the file (expected "
                                "{\"mcpServers\": {\"NAME\": {\"command\": ...}}})")
    servers: dict[str, McpServerConfig] = {}
    warnings: list[str] = []
    for raw_name, entry in entries.items():
        name = str(raw_name)
        if not MCP_SERVER_PATTERN.match(name):
            fixed = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:32]
            fixed = fixed if MCP_SERVER_PATTERN.match(fixed) else ("s_" + fixed)[:32]
            warnings.append(f"{excerpt(name)}: renamed {fixed!r} (tools are named "
                            "<server>_<tool>)")
            name = fixed
        if not isinstance(entry, Mapping):
            warnings.append(f"{name}: not an object; skipped")
            continue
        if entry.get("disabled") is True:
            warnings.append(f"{name}: disabled in the file; skipped")
            continue
        kind = str(entry.get("type") or entry.get("transport") or "").lower()
        try:
            if kind == "sse":
                raise InvalidValueError(f"MCP server {name!r}: SSE servers are not supported "
                                        "(use its streamable-HTTP URL)")
            if entry.get("url") is not None:
                headers = {}
                for header, value in dict(entry.get("headers") or {}).items():
                    headers[str(header)] = _import_header(name, str(header), value, warnings)
                servers[name] = _config(name, transport="http", url=str(entry["url"]),
                                        headers=headers)
            elif entry.get("command") is not None:
                env = {}
                for key, value in dict(entry.get("env") or {}).items():
                    var = _reference(value)
                    if var is None:
                        var = _var_name(str(key))
                        warnings.append(_literal_warning(name, "env", str(key), var))
                    env[str(key)] = var
                args = [str(a) for a in entry.get("args") or []]
                servers[name] = _config(name, transport="stdio", command=str(entry["command"]),
                                        args=args, env=env)
                if entry.get("cwd"):
                    warnings.append(f"{name}: cwd is not supported; the server starts in "
                                    "agentnb's working directory")
            else:
                raise InvalidValueError(f"MCP server {name!r}: neither a command nor a url")
        except InvalidValueError as exc:
            warnings.append(f"{exc.message}; skipped")
    return servers, warnings


def _import_header(server: str, header: str, value: Any, warnings: list[str]) -> str:
    text = str(value).strip()
    scheme, _, rest = text.partition(" ")
    if scheme in _SCHEMES and rest:
        var = _reference(rest)
        if var is None:
            var = _var_name(server, header)
            warnings.append(_literal_warning(server, "header", header, var))
        return f"{scheme} ${{{var}}}"
    var = _reference(text)
    if var is None:
        var = _var_name(server, header)
        warnings.append(_literal_warning(server, "header", header, var))
    return f"${{{var}}}"


# -- agent.mcp ---------------------------------------------------------------------------
class AgentMcp:
    """The MCP servers of one agent (``agent.mcp``)::

        agent.mcp.add("demo", [sys.executable, "demo_server.py"], env=["DEMO_TOKEN"])
        agent.mcp.add("docs", url="http://127.0.0.1:8000/mcp",
                      headers={"Authorization": "Bearer:DOCS_TOKEN"})
        agent.mcp.list(); agent.mcp.tools("demo"); agent.mcp.remove("docs")
        agent.mcp.import_file("mcp.json")

    The agent's tools then include ``demo_<tool>`` for every tool of ``demo``.
    """

    def __init__(self, agent: "Agent") -> None:
        self.agent = agent

    def __repr__(self) -> str:
        return f"<agentnb.AgentMcp of {self.agent.name!r}: {', '.join(self.list()) or 'none'}>"

    def list(self) -> dict[str, McpServerConfig]:
        """The agent's servers by name."""
        return dict(self.agent.refresh().config.mcp_servers)

    def get(self, server: str) -> McpServerConfig:
        """One server's config (NotFoundError, with a close name, if there is none)."""
        servers = self.list()
        if server not in servers:
            hint = did_you_mean(server, servers)
            raise NotFoundError(
                f"agent {self.agent.name!r} has no MCP server {excerpt(server)}"
                + (f"; did you mean {hint!r}?" if hint else "")
                + (f" (servers: {', '.join(servers)})" if servers else " (it has none)"))
        return servers[server]

    def _store(self, servers: Mapping[str, McpServerConfig]) -> None:
        self.agent.set(mcp_servers={k: v.model_dump() for k, v in servers.items()})

    def put(self, server: str, config: McpServerConfig, *,
            replace: bool = False) -> McpServerConfig:
        """Add (or with ``replace``, change) a server from a ready config."""
        _check_server_name(server)
        servers = self.list()
        if server in servers and not replace and servers[server] != config:
            raise AlreadyExistsError(f"agent {self.agent.name!r} already has an MCP server "
                                     f"{server!r}; remove it first, or pass --replace")
        servers[server] = config
        self._store(servers)
        return config

    def add(self, server: str, command: str | Sequence[str] | None = None,
            args: Sequence[str] = (), *, env: Iterable[str] | Mapping[str, str] = (),
            url: str | None = None, headers: Iterable[str] | Mapping[str, str] = (),
            approve: bool = False, approve_tools: Sequence[str] = (),
            replace: bool = False) -> McpServerConfig:
        """Give the agent a server: a stdio ``command`` or a streamable-HTTP ``url``.

        ``env``: variables the server gets from agentnb's environment
        (``["NAME"]``, ``["NAME=VAR"]`` or ``{"NAME": "VAR"}``); ``headers``:
        ``{"Authorization": "Bearer:VAR"}`` or ``["X-Key=VAR"]``. Values are read
        when the server starts, never stored. ``approve``: every call asks first;
        ``approve_tools``: calls of these tools do.
        """
        if (command is None) == (url is None):
            raise InvalidValueError(f"MCP server {server!r}: give either a command (after --) "
                                    "or --url, not both")
        if url is not None:
            if env:
                raise InvalidValueError("--env is for stdio servers; an HTTP server takes "
                                        "--header NAME=VAR")
            config = http_server(server, url, headers=headers, approve=approve,
                                 approve_tools=approve_tools)
        else:
            if headers:
                raise InvalidValueError("--header is for HTTP servers; a stdio server takes "
                                        "--env NAME")
            config = stdio_server(server, command, args, env=env, approve=approve,
                                  approve_tools=approve_tools)
        return self.put(server, config, replace=replace)

    def remove(self, server: str) -> McpServerConfig:
        """Forget a server; returns its config."""
        config = self.get(server)
        servers = self.list()
        del servers[server]
        self._store(servers)
        return config

    def tools(self, server: str | None = None) -> list[McpToolInfo]:
        """The tools of one server (or of all), starting them if needed."""
        names = [server] if server is not None else list(self.list())
        out = []
        for name in names:
            config = self.get(name)
            for spec in self.agent.store.runtime.mcp.server(name, config).specs():
                schema = spec.tool.args_schema if isinstance(spec.tool.args_schema, dict) else {}
                out.append(McpToolInfo(name=spec.name, server=name, description=spec.description,
                                       requires_approval=spec.requires_approval,
                                       input_schema=dict(schema)))
        return out

    def import_config(self, data: Any, *, replace: bool = False) -> ImportResult:
        """Add the servers of an ``{"mcpServers": {...}}`` document (see :func:`parse_servers`)."""
        servers, warnings = parse_servers(data)
        current = self.list()
        added = []
        for name, config in servers.items():
            if name in current and current[name] != config and not replace:
                warnings.append(f"{name}: the agent already has a server of that name; kept "
                                "(pass --replace to change it)")
                continue
            current[name] = config
            added.append(name)
        if added:
            self._store(current)
        return ImportResult(added=added, warnings=warnings)

    def import_file(self, path: str | Path, *, replace: bool = False) -> ImportResult:
        """:meth:`import_config` of a JSON file."""
        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(f"no file {str(file)!r}") from None
        except OSError as exc:
            raise InvalidValueError(f"cannot read {str(file)!r}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidValueError(f"{file.name} is not JSON ({exc.msg} at line {exc.lineno})"
                                    ) from None
        return self.import_config(data, replace=replace)
