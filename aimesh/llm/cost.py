"""Price one LLM call in USD with genai-prices.

Prices are ``Decimal`` USD. ``None`` means the price is unknown (unknown model, no
usage reported) and is never replaced by 0; the local model costs exactly 0.
"""

import logging
from decimal import Decimal

from langchain_core.messages.ai import UsageMetadata

logger = logging.getLogger(__name__)

LOCAL_PROVIDER = "local"


def price_usd(provider: str, model: str, usage: UsageMetadata | None) -> Decimal | None:
    """Return the price of one call.

    Args:
        provider: Chain provider name (``anthropic``, ``openai``, ``google``, ``local``);
            it is also the genai-prices provider id.
        model: Model name as reported by the provider (dated variants are matched).
        usage: Token usage of the call; ``input_tokens`` includes cached tokens, as
            LangChain reports them.

    Returns:
        The price in USD; ``Decimal("0")`` for the local model; ``None`` when the usage
        is missing or genai-prices does not know the model.
    """
    if provider == LOCAL_PROVIDER:
        return Decimal("0")
    if usage is None:
        return None
    from genai_prices import Usage, calc_price

    details = usage.get("input_token_details") or {}
    tokens = Usage(
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cache_read_tokens=details.get("cache_read"),
        cache_write_tokens=details.get("cache_creation"),
    )
    try:
        return calc_price(tokens, model_ref=model, provider_id=provider).total_price
    except (LookupError, ValueError) as exc:  # unknown model, inconsistent usage
        logger.info("no price for %s/%s: %s", provider, model, exc)
        return None


def price_source() -> str:
    """Name and version of the price data, e.g. ``"genai-prices 0.2.3"``."""
    from genai_prices import __version__

    return f"genai-prices {__version__}"
