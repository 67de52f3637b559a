"""What aimesh knows about each configured model: capabilities, prices, place in the chain.

One :class:`ModelInfo` per chain link (``provider/model``, see
:func:`aimesh.llm.route.link_key`): every model of every provider in ``settings.providers``
order, each provider's first model being the default chain's.

Capabilities come from a small table of known models, read from the providers' model pages:

- Anthropic, Claude Sonnet 4.5 and Claude Haiku 4.5: 200,000-token context window (Sonnet's
  1M window is a beta behind a request header, not used here), image input, tool use.
  https://platform.claude.com/docs/en/models/sonnet-4-5/overview,
  https://platform.claude.com/docs/en/models/haiku-4-5/overview
- OpenAI, GPT-4.1 and GPT-4.1 mini: 1,047,576-token context window, image input, function
  calling. https://platform.openai.com/docs/models/gpt-4.1,
  https://platform.openai.com/docs/models/gpt-4.1-mini
- Google, Gemini 2.5 Pro and Gemini 2.5 Flash: 1,048,576 input tokens, image input, function
  calling. https://ai.google.dev/gemini-api/docs/models#gemini-2.5-pro,
  https://ai.google.dev/gemini-api/docs/models#gemini-2.5-flash
- The local model, Qwen2.5-Coder-1.5B-Instruct (GGUF, run by llama-cpp-python): no vision
  (our adapter passes text only, :mod:`aimesh.llm.local_messages`), function calling through
  our own grammar-constrained tool decision (:mod:`aimesh.llm.tool_decision`), context =
  ``settings.local_n_ctx`` (what it is loaded with).
  https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct

The tier (the task complexity a model is fit for) is our reading of how each provider
positions its models on those pages: the flagships (Sonnet 4.5, GPT-4.1, Gemini 2.5 Pro)
``HIGH``; the fast, cheaper ones (Haiku 4.5, GPT-4.1 mini, Gemini 2.5 Flash) ``MEDIUM``; the
1.5B-parameter local model ``LOW``. A model outside the table (an OpenAI-compatible server's
model, another GGUF file) has unknown (``None``) capabilities: never guessed.

Prices are USD per million tokens from genai-prices (the same data the cost ledger prices
calls with), ``None`` when genai-prices does not know the model; the local model costs 0.
"""

import re
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aimesh.config import ProviderName, Settings
from aimesh.llm.cost import LOCAL_PROVIDER, price_source
from aimesh.llm.gguf import GGUF_NAME
from aimesh.llm.providers import configured_providers
from aimesh.llm.route import link_key

Tier = Literal["LOW", "MEDIUM", "HIGH"]
TIERS: tuple[Tier, ...] = ("LOW", "MEDIUM", "HIGH")
"""Tiers and task complexities, lowest first."""

LOCAL_PRICE_SOURCE = "local model (runs on this machine, no charge)"

_ANTHROPIC = "https://platform.claude.com/docs/en/models/{}/overview"
_OPENAI = "https://platform.openai.com/docs/models/{}"
_GOOGLE = "https://ai.google.dev/gemini-api/docs/models#{}"
_QWEN = "https://huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct"
# A dated variant of a model, e.g. claude-sonnet-4-5-20250929 or gpt-4.1-mini-2025-04-14.
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


class Capabilities(BaseModel):
    """What a model can do; ``None`` = unknown (a model outside our table).

    Attributes:
        vision: Accepts image input.
        function_calling: Can call tools (every aimesh run needs it).
        context_window: Input tokens it accepts.
        tier: The task complexity it is fit for (``LOW`` < ``MEDIUM`` < ``HIGH``).
        source: Where these figures come from (a provider's model page).
    """

    model_config = ConfigDict(frozen=True)

    vision: bool | None = None
    function_calling: bool | None = None
    context_window: int | None = Field(default=None, description="Tokens.")
    tier: Tier | None = None
    source: str | None = None


class Prices(BaseModel):
    """USD per million tokens; ``None`` = unknown, never 0 (only the local model costs 0).

    Attributes:
        input: Uncached input tokens.
        output: Output tokens (reasoning tokens included, as providers bill them).
        cached_input: Input tokens read from the provider's prompt cache.
        source: ``"genai-prices X.Y.Z"``, or the local model's no-charge note.
    """

    model_config = ConfigDict(frozen=True)

    input: Decimal | None
    output: Decimal | None
    cached_input: Decimal | None
    source: str


class ModelInfo(BaseModel):
    """One link of the provider chain.

    Attributes:
        provider: ``anthropic``, ``openai``, ``google`` or ``local``.
        model: The configured model name (the GGUF file stem for ``local``).
        position: Place among all links, in settings order, from 1.
        default: Whether the default chain uses it (its provider's first model).
        configured: Whether its provider is configured (a key, or a base URL for openai;
            the local model counts as configured, its file is checked when it loads).
        capabilities: What it can do (unknown fields ``None``).
        prices: What it costs (USD per million tokens).
    """

    model_config = ConfigDict(frozen=True)

    provider: ProviderName
    model: str
    position: int
    default: bool
    configured: bool
    capabilities: Capabilities
    prices: Prices

    @property
    def key(self) -> str:
        """The link key, ``provider/model``."""
        return link_key(self.provider, self.model)


def _remote(url: str, tier: Tier, context_window: int) -> Capabilities:
    return Capabilities(
        vision=True, function_calling=True, context_window=context_window, tier=tier, source=url
    )


_KNOWN: dict[tuple[str, str], Capabilities] = {
    ("anthropic", "claude-sonnet-4-6"): _remote(_ANTHROPIC.format("sonnet-4-6"), "HIGH", 200_000),
    ("anthropic", "claude-sonnet-4-5"): _remote(_ANTHROPIC.format("sonnet-4-5"), "HIGH", 200_000),
    ("anthropic", "claude-haiku-4-5"): _remote(_ANTHROPIC.format("haiku-4-5"), "MEDIUM", 200_000),
    ("openai", "gpt-4.1"): _remote(_OPENAI.format("gpt-4.1"), "HIGH", 1_047_576),
    ("openai", "gpt-4.1-mini"): _remote(_OPENAI.format("gpt-4.1-mini"), "MEDIUM", 1_047_576),
    ("google", "gemini-2.5-pro"): _remote(_GOOGLE.format("gemini-2.5-pro"), "HIGH", 1_048_576),
    ("google", "gemini-2.5-flash"): _remote(
        _GOOGLE.format("gemini-2.5-flash"), "MEDIUM", 1_048_576
    ),
}
PACKAGED_LOCAL_MODEL = Path(GGUF_NAME).stem
"""The packaged local model's link name (the GGUF stem, as the local provider names it)."""


def local_model_name(settings: Settings) -> str:
    """The local link's model name: the GGUF file stem (``AIMESH_GGUF_PATH`` or the packaged).

    Computed without resolving the file (which may assemble the packaged model).
    """
    return settings.gguf_path.stem if settings.gguf_path else PACKAGED_LOCAL_MODEL


def capabilities(provider: str, model: str, settings: Settings) -> Capabilities:
    """The capabilities of ``provider``'s ``model``; all ``None`` for a model we do not know.

    Args:
        provider: Chain provider name.
        model: Configured model name; a dated variant (``...-20250929``,
            ``...-2025-04-14``) counts as its model.
        settings: ``local_n_ctx`` is the local model's context window.
    """
    if provider == LOCAL_PROVIDER:
        return Capabilities(
            vision=False,
            function_calling=True,
            context_window=settings.local_n_ctx,
            tier="LOW" if model == PACKAGED_LOCAL_MODEL else None,
            source=_QWEN
            if model == PACKAGED_LOCAL_MODEL
            else "aimesh local adapter (text only, tool calls by constrained JSON)",
        )
    known = _KNOWN.get((provider, model)) or _KNOWN.get((provider, _DATE_SUFFIX.sub("", model)))
    return known or Capabilities()


def prices(provider: str, model: str) -> Prices:
    """USD per million tokens of ``provider``'s ``model``, from genai-prices.

    A tiered price (e.g. Gemini 2.5 Pro above 200k input tokens) is given at its base rate,
    the rate below the first tier.

    Args:
        provider: Chain provider name, also the genai-prices provider id.
        model: Model name (dated variants are matched by genai-prices).

    Returns:
        The prices; every price ``None`` when genai-prices does not know the model, every
        price 0 for the local model.
    """
    if provider == LOCAL_PROVIDER:
        zero = Decimal(0)
        return Prices(input=zero, output=zero, cached_input=zero, source=LOCAL_PRICE_SOURCE)
    from genai_prices import Usage, calc_price

    try:
        found = calc_price(Usage(), model_ref=model, provider_id=provider).model_price
    except LookupError:  # unknown provider or model
        return Prices(input=None, output=None, cached_input=None, source=price_source())
    return Prices(
        input=_per_mtok(getattr(found, "input_mtok", None)),
        output=_per_mtok(getattr(found, "output_mtok", None)),
        cached_input=_per_mtok(getattr(found, "cache_read_mtok", None)),
        source=price_source(),
    )


def _per_mtok(price: object) -> Decimal | None:
    """A genai-prices price (a Decimal, or tiered prices with a ``base``) as a Decimal."""
    if price is None or isinstance(price, Decimal):
        return price
    base = getattr(price, "base", None)
    return base if isinstance(base, Decimal) else None


def model_links(settings: Settings) -> list[ModelInfo]:
    """Every link of the chain the settings describe, in chain order.

    Args:
        settings: ``providers`` (order), each provider's models (``Settings.models_of``),
            keys (``configured``), the local model's file and context.

    Returns:
        One entry per model of each provider in ``settings.providers`` (the local provider:
        one, its GGUF stem), configured or not, positions from 1.
    """
    configured = set(configured_providers(settings))
    pairs = [
        (provider, model, index == 0)
        for provider in settings.providers
        for index, model in enumerate(
            [local_model_name(settings)]
            if provider == LOCAL_PROVIDER
            else settings.models_of(provider)
        )
    ]
    return [
        ModelInfo(
            provider=provider,
            model=model,
            position=position,
            default=default,
            configured=provider in configured,
            capabilities=capabilities(provider, model, settings),
            prices=prices(provider, model),
        )
        for position, (provider, model, default) in enumerate(pairs, start=1)
    ]
