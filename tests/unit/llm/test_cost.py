from decimal import Decimal

from genai_prices import Usage, calc_price
from langchain_core.messages.ai import UsageMetadata

from aimesh.llm.cost import price_source, price_usd


def usage(input_tokens: int, output_tokens: int, **details: int) -> UsageMetadata:
    result = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    if details:
        result["input_token_details"] = details  # type: ignore[typeddict-item]
    return result


def test_known_model_is_priced_in_decimal_usd() -> None:
    price = price_usd("anthropic", "claude-sonnet-4-5", usage(1000, 500))
    assert price == Decimal("0.0105") and isinstance(price, Decimal)


def test_cached_tokens_are_priced_as_cache_reads_and_writes() -> None:
    price = price_usd(
        "anthropic", "claude-sonnet-4-5", usage(3000, 0, cache_read=1000, cache_creation=1000)
    )
    expected = calc_price(
        Usage(input_tokens=3000, cache_read_tokens=1000, cache_write_tokens=1000),
        model_ref="claude-sonnet-4-5",
        provider_id="anthropic",
    ).total_price
    assert price == expected < price_usd("anthropic", "claude-sonnet-4-5", usage(3000, 0))  # type: ignore[operator]


def test_google_and_openai_models_are_priced() -> None:
    assert price_usd("google", "gemini-2.5-flash", usage(1000, 500)) > 0  # type: ignore[operator]
    assert price_usd("openai", "gpt-4.1-mini-2025-04-14", usage(1000, 500)) > 0  # type: ignore[operator]


def test_unknown_model_or_usage_is_none_never_zero() -> None:
    assert price_usd("openai", "my-vllm-model", usage(1000, 500)) is None
    assert price_usd("anthropic", "claude-sonnet-4-5", None) is None
    assert price_usd("openai", "gpt-4.1-mini", usage(10, 0, cache_read=100)) is None  # inconsistent


def test_local_model_costs_exactly_zero() -> None:
    assert price_usd("local", "qwen2.5-coder-1.5b-instruct-q4_k_m", usage(5000, 500)) == Decimal(
        "0"
    )
    assert price_usd("local", "anything", None) == Decimal("0")


def test_price_source_names_genai_prices_and_its_version() -> None:
    assert price_source().startswith("genai-prices 0.")
