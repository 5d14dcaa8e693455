"""resolve_model / list_providers, against a local OpenAI-compatible server."""

from __future__ import annotations

import subprocess
import sys

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agentnb.errors import InvalidValueError, ModelNotAvailableError, UserError
from agentnb.models import (
    OfflineChatModel,
    ProviderInfo,
    list_providers,
    parse_model_spec,
    resolve_model,
)
from agentnb.models._calls import count_tokens
from tests.openai_server import OpenAIServer, openai_server  # noqa: F401

SECRET = "sk-test-DO-NOT-LEAK-4242"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_COMPATIBLE_API_KEY", "MY_KEY"):
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------------ specs


def test_parse_model_spec() -> None:
    assert parse_model_spec("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse_model_spec(" OpenAI_Compatible:my-model ") == ("openai-compatible", "my-model")
    assert parse_model_spec("offline") == ("offline", "")
    assert parse_model_spec("ollama:llama3:8b") == ("ollama", "llama3:8b")


def test_importing_models_does_not_import_integrations() -> None:
    code = (
        "import sys, agentnb.models as m; m.list_providers(); "
        "print(sorted(k for k in sys.modules if k.startswith(('langchain', 'openai'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("spec", ["offline", "offline:demo"])
def test_resolve_offline(spec: str) -> None:
    model = resolve_model(spec, {"token_delay": 0.0, "max_tokens": 50})
    assert isinstance(model, OfflineChatModel)
    assert model.max_tokens == 50
    reply = model.invoke("hello")
    assert "hello" in reply.text
    assert reply.response_metadata["model_name"] == spec


def test_offline_bad_kwargs_is_invalid_value() -> None:
    with pytest.raises(InvalidValueError, match="bad model settings for 'offline'.*tokn_delay"):
        resolve_model("offline", {"tokn_delay": 1})
    with pytest.raises(InvalidValueError, match="token_delay"):
        resolve_model("offline", {"token_delay": "slow"})


def test_unknown_provider() -> None:
    with pytest.raises(ModelNotAvailableError) as info:
        resolve_model("mistralai:large")
    message = str(info.value)
    assert "unknown model provider 'mistralai'" in message
    for name in ("offline", "openai", "openai-compatible", "anthropic", "ollama"):
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("spec", "suggestion"),
    [("gpt-4o", "openai:gpt-4o"), ("claude-3-haiku", "anthropic:claude-3-haiku"),
     ("llama3", "ollama:llama3"), ("mystery", "openai:mystery")],
)
def test_bare_name_suggests_a_spec(spec: str, suggestion: str) -> None:
    with pytest.raises(ModelNotAvailableError, match=f"'{suggestion}'"):
        resolve_model(spec)


@pytest.mark.parametrize("spec", ["", "openai:", "openai"])
def test_empty_names(spec: str) -> None:
    with pytest.raises(UserError):
        resolve_model(spec)


def test_anthropic_not_installed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # the real situation in this venv: langchain-anthropic is not installed
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    with pytest.raises(ModelNotAvailableError) as info:
        resolve_model("anthropic:claude-x")
    assert str(info.value) == (
        "model 'anthropic:claude-x' needs the langchain-anthropic package: "
        "pip install 'agentnb[anthropic]'"
    )


def test_ollama_not_installed_names_the_extra() -> None:
    with pytest.raises(ModelNotAvailableError, match=r"pip install 'agentnb\[ollama\]'"):
        resolve_model("ollama:llama3")


def test_openai_missing_package_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    expected = r"langchain-openai package: pip install 'agentnb\[openai\]'"
    with pytest.raises(ModelNotAvailableError, match=expected):
        resolve_model("openai:gpt-4o-mini")
    info = {p.name: p for p in list_providers()}
    assert info["openai"].installed is False


def test_openai_without_key_says_which_variable(no_keys: None) -> None:
    with pytest.raises(ModelNotAvailableError, match="set the OPENAI_API_KEY environment variable"):
        resolve_model("openai:gpt-4o-mini")
    with pytest.raises(ModelNotAvailableError, match="MY_KEY, which is not set"):
        resolve_model("openai:gpt-4o-mini", {"api_key_env": "MY_KEY"})


def test_secrets_in_kwargs_are_refused(no_keys: None) -> None:
    with pytest.raises(InvalidValueError, match="looks like a secret"):
        resolve_model("openai-compatible:m", {"base_url": "http://x/v1", "api_key": SECRET})
    with pytest.raises(InvalidValueError, match="api_key_env must name"):
        resolve_model("openai:m", {"api_key_env": "not a var"})


def test_openai_compatible_requires_base_url() -> None:
    with pytest.raises(InvalidValueError, match="needs a base_url"):
        resolve_model("openai-compatible:llama3")


def test_openai_bad_kwargs_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with pytest.raises(InvalidValueError) as info:
        resolve_model("openai:gpt-4o-mini", {"temperature": "hot"})
    message = str(info.value)
    assert "temperature" in message and "\n" not in message
    assert SECRET not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


# ------------------------------------------------------- list_providers


def test_list_providers_key_set(monkeypatch: pytest.MonkeyPatch, no_keys: None) -> None:
    providers = {p.name: p for p in list_providers()}
    assert all(isinstance(p, ProviderInfo) for p in providers.values())
    assert set(providers) == {"offline", "openai", "openai-compatible", "anthropic", "ollama"}
    assert providers["offline"].installed and providers["offline"].key_env is None
    assert providers["openai"].installed is True  # langchain-openai is in the dev extra
    assert providers["anthropic"].installed is False
    assert providers["anthropic"].extra == "anthropic"
    assert providers["ollama"].key_env is None
    assert providers["openai"].key_set is False
    assert providers["openai"].example == "openai:gpt-4o-mini"

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    providers = {p.name: p for p in list_providers()}
    assert providers["openai"].key_set is True
    assert providers["anthropic"].key_set is False
    dumped = repr(list_providers()) + str([p.model_dump_json() for p in list_providers()])
    assert SECRET not in dumped


def test_list_providers_does_not_import_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "langchain_openai", raising=False)
    list_providers()
    assert "langchain_openai" not in sys.modules


# ------------------------------------------- openai against the local server


def _server_model(server: OpenAIServer, spec: str = "openai:test-model", **kwargs: object):
    return resolve_model(spec, {"base_url": server.url, "max_retries": 0, "timeout": 10, **kwargs})


def test_openai_invoke_uses_env_key(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    model = _server_model(openai_server, temperature=0)
    assert SECRET not in repr(model) and SECRET not in str(model)
    assert model.stream_usage is True
    reply = model.invoke("hello server")
    assert isinstance(reply, AIMessage)
    assert reply.text == OpenAIServer.reply_text
    assert reply.usage_metadata and reply.usage_metadata["total_tokens"] > 0
    request = openai_server.requests[-1]
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert request["body"]["model"] == "test-model"
    assert request["body"]["temperature"] == 0
    assert request["body"]["messages"][-1] == {"role": "user", "content": "hello server"}


def test_openai_stream_reports_usage(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    model = _server_model(openai_server)
    chunks = list(model.stream("hello"))
    assert len(chunks) > 3
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.text == OpenAIServer.reply_text
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] == count_tokens(OpenAIServer.reply_text)
    body = openai_server.requests[-1]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_openai_tool_calling(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    model = _server_model(openai_server).bind_tools([add])
    question = HumanMessage("please add(a=2, b=3)")
    reply = model.invoke([question])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert openai_server.requests[-1]["body"]["tools"][0]["function"]["name"] == "add"

    streamed = None
    for chunk in model.stream([question]):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [("add", {"a": 2, "b": 3})]

    result = ToolMessage("5", tool_call_id=reply.tool_calls[0]["id"], name="add")
    final = model.invoke([question, reply, result])
    assert final.text == "add returned 5."
    assert not final.tool_calls


def test_openai_compatible_without_key_sends_placeholder(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, no_keys: None  # noqa: F811
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)  # must not be sent to a third-party server
    model = _server_model(openai_server, spec="openai-compatible:local")
    assert model.invoke("hi").text == OpenAIServer.reply_text
    assert openai_server.requests[-1]["headers"]["Authorization"] == "Bearer not-needed"


def test_openai_compatible_key_from_named_env(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, no_keys: None  # noqa: F811
) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    model = _server_model(openai_server, spec="openai-compatible:local", api_key_env="MY_KEY")
    assert SECRET not in repr(model)
    model.invoke("hi")
    assert openai_server.requests[-1]["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = openai_server.requests[-1]["body"]
    assert "api_key_env" not in body and body["model"] == "local"


def test_openai_base_url_without_key_uses_placeholder(
    openai_server: OpenAIServer, no_keys: None  # noqa: F811
) -> None:
    model = _server_model(openai_server)
    model.invoke("hi")
    assert openai_server.requests[-1]["headers"]["Authorization"] == "Bearer not-needed"


async def _astream_text(model: object) -> str:
    text = ""
    async for chunk in model.astream("hello"):  # type: ignore[attr-defined]
        text += chunk.text
    return text


@pytest.mark.asyncio
async def test_openai_astream(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert await _astream_text(_server_model(openai_server)) == OpenAIServer.reply_text


# ------------------------------------------------------------------ anthropic, ollama wiring
# Their integration packages are not in the dev extra; a stand-in module with the
# class name checks what resolve_model hands to them.


class _Recorder:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


def _fake_integration(monkeypatch: pytest.MonkeyPatch, module: str, cls: str) -> None:
    import types

    fake = types.ModuleType(module)
    setattr(fake, cls, type(cls, (_Recorder,), {}))
    monkeypatch.setitem(sys.modules, module, fake)


def test_anthropic_gets_model_settings_and_the_env_key(monkeypatch, no_keys) -> None:
    _fake_integration(monkeypatch, "langchain_anthropic", "ChatAnthropic")
    with pytest.raises(ModelNotAvailableError, match="set the ANTHROPIC_API_KEY"):
        resolve_model("anthropic:claude-x")
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    model = resolve_model("anthropic:claude-x", {"temperature": 0, "max_tokens": 100})
    assert type(model).__name__ == "ChatAnthropic"
    assert model.kwargs == {"model": "claude-x", "temperature": 0, "max_tokens": 100,
                            "api_key": SECRET}
    monkeypatch.setenv("MY_KEY", "other-key")
    model = resolve_model("anthropic:claude-x", {"api_key_env": "MY_KEY"})
    assert model.kwargs["api_key"] == "other-key" and "api_key_env" not in model.kwargs


def test_ollama_gets_model_settings_and_no_key(monkeypatch) -> None:
    _fake_integration(monkeypatch, "langchain_ollama", "ChatOllama")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    model = resolve_model("ollama:llama3", {"base_url": "http://127.0.0.1:11434",
                                            "num_ctx": 4096})
    assert type(model).__name__ == "ChatOllama"
    assert model.kwargs == {"model": "llama3", "base_url": "http://127.0.0.1:11434",
                            "num_ctx": 4096}
    with pytest.raises(InvalidValueError, match="takes no API key"):
        resolve_model("ollama:llama3", {"api_key_env": "OPENAI_API_KEY"})
