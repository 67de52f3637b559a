from decimal import Decimal
from pathlib import Path

import pytest
from langchain_core.messages.ai import UsageMetadata
from pydantic import SecretStr

from aimesh.config import Settings
from aimesh.llm.catalog import (
    LOCAL_PRICE_SOURCE,
    PACKAGED_LOCAL_MODEL,
    Capabilities,
    capabilities,
    model_links,
    prices,
)
from aimesh.llm.cost import price_source, price_usd

LOCAL = "local/qwen2.5-coder-1.5b-instruct-q4_k_m"
ALL_KEYS = {
    "anthropic_api_key": SecretStr("a"),
    "openai_api_key": SecretStr("o"),
    "google_api_key": SecretStr("g"),
}


def test_every_model_of_every_provider_is_a_link_in_chain_order(tmp_path: Path) -> None:
    links = model_links(Settings(home=tmp_path, **ALL_KEYS))
    assert [(link.key, link.position, link.default) for link in links] == [
        ("anthropic/claude-sonnet-4-6", 1, True),
        ("anthropic/claude-haiku-4-5", 2, False),
        ("openai/gpt-4.1-mini", 3, True),
        ("openai/gpt-4.1", 4, False),
        ("google/gemini-2.5-flash", 5, True),
        ("google/gemini-2.5-pro", 6, False),
        (LOCAL, 7, True),
    ]
    assert all(link.configured for link in links)


def test_links_follow_the_settings_and_say_which_are_configured(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        providers=["local", "openai", "google"],
        openai_base_url="http://127.0.0.1:8000/v1",
        openai_models=["my-vllm-model"],
        gguf_path=Path("/models/other-model.Q8_0.gguf"),
    )
    links = model_links(settings)
    assert [(link.key, link.position, link.configured) for link in links] == [
        ("local/other-model.Q8_0", 1, True),
        ("openai/my-vllm-model", 2, True),  # a base URL configures openai without a key
        ("google/gemini-2.5-flash", 3, False),
        ("google/gemini-2.5-pro", 4, False),
    ]


@pytest.mark.parametrize(
    ("provider", "model", "vision", "tools", "context", "tier"),
    [
        ("anthropic", "claude-sonnet-4-5", True, True, 200_000, "HIGH"),
        ("anthropic", "claude-sonnet-4-5-20250929", True, True, 200_000, "HIGH"),
        ("anthropic", "claude-haiku-4-5", True, True, 200_000, "MEDIUM"),
        ("openai", "gpt-4.1", True, True, 1_047_576, "HIGH"),
        ("openai", "gpt-4.1-mini", True, True, 1_047_576, "MEDIUM"),
        ("openai", "gpt-4.1-mini-2025-04-14", True, True, 1_047_576, "MEDIUM"),
        ("google", "gemini-2.5-pro", True, True, 1_048_576, "HIGH"),
        ("google", "gemini-2.5-flash", True, True, 1_048_576, "MEDIUM"),
        ("local", PACKAGED_LOCAL_MODEL, False, True, 4096, "LOW"),
    ],
)
def test_known_models_have_their_documented_capabilities(
    provider: str, model: str, vision: bool, tools: bool, context: int, tier: str
) -> None:
    found = capabilities(provider, model, Settings(local_n_ctx=4096))
    assert (found.vision, found.function_calling, found.context_window, found.tier) == (
        vision,
        tools,
        context,
        tier,
    )
    assert found.source and found.source.startswith("https://")


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "my-vllm-model"),
        ("openai", "gpt-4.1-nano"),  # a prefix of a known model is not that model
        ("openai", "gpt-4.1-mini-preview"),  # neither is a non-date suffix
        ("anthropic", "claude-opus-4-1"),
        ("google", "claude-sonnet-4-5"),  # known models are known per provider
    ],
)
def test_unknown_models_have_unknown_capabilities_never_guessed(provider: str, model: str) -> None:
    assert capabilities(provider, model, Settings()) == Capabilities()
    assert Capabilities() == Capabilities(
        vision=None, function_calling=None, context_window=None, tier=None, source=None
    )


def test_another_local_gguf_calls_tools_through_our_layer_but_has_no_known_tier() -> None:
    found = capabilities("local", "other-model.Q8_0", Settings(local_n_ctx=2048))
    assert (found.vision, found.function_calling, found.context_window, found.tier) == (
        False,
        True,
        2048,
        None,
    )


@pytest.mark.parametrize(
    ("provider", "model", "input_", "output", "cached"),
    [
        ("anthropic", "claude-sonnet-4-5", "3", "15", "0.3"),
        ("anthropic", "claude-haiku-4-5", "1", "5", "0.1"),
        ("openai", "gpt-4.1", "2", "8", "0.5"),
        ("openai", "gpt-4.1-mini", "0.4", "1.6", "0.1"),
        ("google", "gemini-2.5-pro", "1.25", "10", "0.125"),  # tiered: base (<= 200k) rate
        ("google", "gemini-2.5-flash", "0.3", "2.5", "0.03"),
    ],
)
def test_prices_are_genai_prices_usd_per_million_tokens(
    provider: str, model: str, input_: str, output: str, cached: str
) -> None:
    found = prices(provider, model)
    assert (found.input, found.output, found.cached_input) == (
        Decimal(input_),
        Decimal(output),
        Decimal(cached),
    )
    assert found.source == price_source()


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "claude-sonnet-4-5"),
        ("openai", "gpt-4.1-mini"),
        ("google", "gemini-2.5-flash"),
    ],
)
def test_prices_agree_with_what_the_ledger_charges(provider: str, model: str) -> None:
    per_mtok = prices(provider, model)
    call = UsageMetadata(input_tokens=1200, output_tokens=300, total_tokens=1500)
    assert per_mtok.input is not None and per_mtok.output is not None
    expected = (1200 * per_mtok.input + 300 * per_mtok.output) / 1_000_000
    assert price_usd(provider, model, call) == expected


def test_unknown_prices_are_none_and_the_local_model_costs_zero() -> None:
    unknown = prices("openai", "my-vllm-model")
    assert (unknown.input, unknown.output, unknown.cached_input) == (None, None, None)
    assert unknown.source == price_source()
    local = prices("local", PACKAGED_LOCAL_MODEL)
    assert (local.input, local.output, local.cached_input) == (0, 0, 0)
    assert local.source == LOCAL_PRICE_SOURCE
