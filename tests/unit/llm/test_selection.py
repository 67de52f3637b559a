from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from aimesh.config import Settings
from aimesh.errors import NoProviderError
from aimesh.llm.catalog import Capabilities, ModelInfo, Prices, model_links
from aimesh.llm.selection import ModelSelection, blended_price, choose_route

SONNET = "anthropic/claude-sonnet-4-6"
HAIKU = "anthropic/claude-haiku-4-5"
MINI = "openai/gpt-4.1-mini"
GPT41 = "openai/gpt-4.1"
FLASH = "google/gemini-2.5-flash"
PRO = "google/gemini-2.5-pro"
LOCAL = "local/qwen2.5-coder-1.5b-instruct-q4_k_m"
KEYS = {
    "anthropic_api_key": SecretStr("a"),
    "openai_api_key": SecretStr("o"),
    "google_api_key": SecretStr("g"),
}


@dataclass(frozen=True)
class Measured:
    """A link's history as the ledger reports it."""

    calls: int
    failures: int = 0
    median_latency_s: float | None = 1.0


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> list[ModelInfo]:
    """The default settings' links, every provider configured (real capabilities and
    genai-prices prices)."""
    return model_links(Settings(home=tmp_path_factory.mktemp("home"), **KEYS))


def select(**fields: object) -> ModelSelection:
    return ModelSelection.model_validate(fields)


# Expected orders with the default settings (every provider configured), no history.
# Tiers: Sonnet 4.5, GPT-4.1, Gemini 2.5 Pro HIGH; Haiku 4.5, GPT-4.1 mini, Gemini 2.5 Flash
# MEDIUM; local LOW. Blended prices (3 input : 1 output, USD per million tokens): mini 0.70,
# flash 0.85, haiku 2.00, pro 3.4375, gpt-4.1 3.50, sonnet 6.00.
WITHOUT_HISTORY = [
    ("no selection: the default chain", None, False, [SONNET, MINI, FLASH, LOCAL]),
    (
        "MEDIUM: every remote model fits, chain order",
        {},
        False,
        [SONNET, HAIKU, MINI, GPT41, FLASH, PRO, LOCAL],
    ),
    (
        "LOW: every model fits, the local one still last",
        {"task_complexity": "LOW"},
        False,
        [SONNET, HAIKU, MINI, GPT41, FLASH, PRO, LOCAL],
    ),
    (
        "HIGH: the flagships first",
        {"task_complexity": "HIGH"},
        False,
        [SONNET, GPT41, PRO, HAIKU, MINI, FLASH, LOCAL],
    ),
    (
        "MEDIUM, cost sensitive: cheapest first",
        {"cost_sensitive": True},
        False,
        [MINI, FLASH, HAIKU, PRO, GPT41, SONNET, LOCAL],
    ),
    (
        "HIGH, cost sensitive: cheapest flagship first, fitness before price",
        {"task_complexity": "HIGH", "cost_sensitive": True},
        False,
        [PRO, GPT41, SONNET, MINI, FLASH, HAIKU, LOCAL],
    ),
    (
        "HIGH under budget pressure: price before fitness (downgrade)",
        {"task_complexity": "HIGH"},
        True,
        [MINI, FLASH, HAIKU, PRO, GPT41, SONNET, LOCAL],
    ),
    (
        "budget pressure without a selection: cheapest first",
        None,
        True,
        [MINI, FLASH, HAIKU, PRO, GPT41, SONNET, LOCAL],
    ),
    (
        "vision: the local model (text only) is dropped",
        {"requires_vision": True},
        False,
        [SONNET, HAIKU, MINI, GPT41, FLASH, PRO],
    ),
    (
        "function calling cannot be switched off: same as MEDIUM",
        {"requires_function_calling": False},
        False,
        [SONNET, HAIKU, MINI, GPT41, FLASH, PRO, LOCAL],
    ),
]


@pytest.mark.parametrize(
    ("selection", "budget_pressure", "expected"),
    [case[1:] for case in WITHOUT_HISTORY],
    ids=[case[0] for case in WITHOUT_HISTORY],
)
def test_route_without_history(
    links: list[ModelInfo],
    selection: dict[str, object] | None,
    budget_pressure: bool,
    expected: list[str],
) -> None:
    chosen = None if selection is None else select(**selection)
    assert choose_route(chosen, links, {}, budget_pressure=budget_pressure) == expected


WITH_HISTORY = [
    (
        "a failing model drops below models without history",
        {SONNET: Measured(10, failures=5)},
        {},
        [HAIKU, MINI, GPT41, FLASH, PRO, SONNET, LOCAL],
    ),
    (
        "a rare failure does not reorder (49/50 = 98% rounds with 100%)",
        {SONNET: Measured(50, failures=1)},
        {},
        [SONNET, HAIKU, MINI, GPT41, FLASH, PRO, LOCAL],
    ),
    (
        "at equal success, faster first; no history counts as the median latency (2 s)",
        {
            SONNET: Measured(20, median_latency_s=3.0),
            MINI: Measured(20, median_latency_s=1.0),
            FLASH: Measured(20, median_latency_s=2.0),
        },
        {},
        [MINI, HAIKU, GPT41, FLASH, PRO, SONNET, LOCAL],
    ),
    (
        "success before latency; no history counts as the median latency (0.3 s)",
        {
            MINI: Measured(20, failures=4, median_latency_s=0.1),
            SONNET: Measured(20, median_latency_s=0.5),
        },
        {},
        [HAIKU, GPT41, FLASH, PRO, SONNET, MINI, LOCAL],
    ),
    (
        "history orders within a fitness class, never across it",
        {PRO: Measured(20, failures=10), HAIKU: Measured(20, median_latency_s=0.1)},
        {"task_complexity": "HIGH"},
        [SONNET, GPT41, PRO, HAIKU, MINI, FLASH, LOCAL],
    ),
    (
        "price before history when cost sensitive",
        {MINI: Measured(20, failures=10)},
        {"cost_sensitive": True},
        [MINI, FLASH, HAIKU, PRO, GPT41, SONNET, LOCAL],
    ),
    (
        "the local model's history does not move it from last",
        {LOCAL: Measured(50, median_latency_s=0.01), SONNET: Measured(10, failures=10)},
        {"task_complexity": "LOW"},
        [HAIKU, MINI, GPT41, FLASH, PRO, SONNET, LOCAL],
    ),
    (
        "history does not change the default chain",
        {SONNET: Measured(10, failures=10)},
        None,
        [SONNET, MINI, FLASH, LOCAL],
    ),
]


@pytest.mark.parametrize(
    ("history", "selection", "expected"),
    [case[1:] for case in WITH_HISTORY],
    ids=[case[0] for case in WITH_HISTORY],
)
def test_route_with_measured_history(
    links: list[ModelInfo],
    history: dict[str, Measured],
    selection: dict[str, object] | None,
    expected: list[str],
) -> None:
    chosen = None if selection is None else select(**selection)
    assert choose_route(chosen, links, history) == expected


def link(
    key: str,
    position: int,
    *,
    vision: bool | None = True,
    tools: bool | None = True,
    tier: str | None = "MEDIUM",
    price: tuple[str, str] | None = ("1", "4"),
    configured: bool = True,
    default: bool = True,
) -> ModelInfo:
    provider, model = key.split("/")
    return ModelInfo(
        provider=provider,
        model=model,
        position=position,
        default=default,
        configured=configured,
        capabilities=Capabilities(vision=vision, function_calling=tools, tier=tier),
        prices=Prices(
            input=Decimal(price[0]) if price else None,
            output=Decimal(price[1]) if price else None,
            cached_input=None,
            source="test",
        ),
    )


UNKNOWN = "openai/my-vllm-model"
EDGE_CASES = [
    (
        "unknown capabilities stay, after the links known to have them",
        [
            link(UNKNOWN, 1, vision=None, tools=None, tier=None, price=None),
            link(SONNET, 2),
            link(LOCAL, 3, vision=False, tier="LOW", price=("0", "0")),
        ],
        {},
        [SONNET, UNKNOWN, LOCAL],
    ),
    (
        "vision unknown: kept after the links known to see; known blind: dropped",
        [link(UNKNOWN, 1, vision=None), link(MINI, 2, vision=False), link(SONNET, 3)],
        {"requires_vision": True},
        [SONNET, UNKNOWN],
    ),
    (
        "a model known to lack tools is dropped even when the task says it needs none",
        [link(UNKNOWN, 1, tools=False), link(SONNET, 2)],
        {"requires_function_calling": False},
        [SONNET],
    ),
    (
        "unknown tier: after the fit links, before the ones below the complexity",
        [link(HAIKU, 1, tier="MEDIUM"), link(UNKNOWN, 2, tier=None), link(SONNET, 3, tier="HIGH")],
        {"task_complexity": "HIGH"},
        [SONNET, UNKNOWN, HAIKU],
    ),
    (
        "unknown price: after every known price",
        [
            link(UNKNOWN, 1, price=None),
            link(SONNET, 2, price=("3", "15")),
            link(MINI, 3, price=("0.4", "1.6")),
        ],
        {"cost_sensitive": True},
        [MINI, SONNET, UNKNOWN],
    ),
    (
        "equal prices: chain order",
        [link(FLASH, 1, price=("1", "4")), link(MINI, 2, price=("1", "4"))],
        {"cost_sensitive": True},
        [FLASH, MINI],
    ),
    (
        "blended 3:1, not the sum: (1 in, 7 out) = 2.5 beats (2.5 in, 4 out) = 2.875",
        [link(MINI, 1, price=("2.5", "4")), link(FLASH, 2, price=("1", "7"))],
        {"cost_sensitive": True},
        [FLASH, MINI],
    ),
    (
        "unconfigured links are never chosen",
        [link(SONNET, 1, configured=False), link(MINI, 2)],
        {},
        [MINI],
    ),
]


@pytest.mark.parametrize(
    ("candidates", "selection", "expected"),
    [case[1:] for case in EDGE_CASES],
    ids=[case[0] for case in EDGE_CASES],
)
def test_route_edge_cases(
    candidates: list[ModelInfo], selection: dict[str, object], expected: list[str]
) -> None:
    assert choose_route(select(**selection), candidates, {}) == expected


def test_unconfigured_default_links_leave_the_default_chain_to_the_others() -> None:
    candidates = [
        link(SONNET, 1, configured=False),
        link(HAIKU, 2, configured=False, default=False),
        link(MINI, 3),
        link(GPT41, 4, default=False),
    ]
    assert choose_route(None, candidates, {}) == [MINI]


def test_only_the_local_model_configured(tmp_path: Path) -> None:
    only_local = model_links(Settings(home=tmp_path))
    assert choose_route(None, only_local, {}) == [LOCAL]
    assert choose_route(select(task_complexity="HIGH"), only_local, {}) == [LOCAL]
    with pytest.raises(NoProviderError) as refused:
        choose_route(select(requires_vision=True), only_local, {})
    assert str(refused.value).startswith(
        "no configured model supports vision (model_selection.requires_vision is true); "
        f"configured: {LOCAL}; configure a provider with such a model: set ANTHROPIC_API_KEY"
    )


def test_no_configured_link_is_a_clear_error() -> None:
    nothing = [link(SONNET, 1, configured=False)]
    for selection in (None, select()):
        with pytest.raises(NoProviderError, match="^no model is configured; set ANTHROPIC"):
            choose_route(selection, nothing, {})


def test_blended_price_weighs_three_input_tokens_per_output_token() -> None:
    assert blended_price(link(MINI, 1, price=("0.4", "1.6")).prices) == Decimal("0.7")
    assert blended_price(link(MINI, 1, price=None).prices) is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"task_complexity": "EXTREME"}, "task_complexity", "'LOW', 'MEDIUM' or 'HIGH'"),
        ({"task_complexity": "low"}, "task_complexity", "'LOW', 'MEDIUM' or 'HIGH'"),
        ({"requires_vision": "yes"}, "requires_vision", "valid boolean"),
        ({"requires_function_calling": 1}, "requires_function_calling", "valid boolean"),
        ({"cost_sensitive": None}, "cost_sensitive", "valid boolean"),
        ({"budget": 5}, "budget", "Extra inputs are not permitted"),
    ],
)
def test_model_selection_refuses_bad_fields_by_name(
    body: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        ModelSelection.model_validate(body)
    (error,) = refused.value.errors()
    assert error["loc"] == (field,)
    assert message in error["msg"]


def test_model_selection_defaults() -> None:
    assert ModelSelection() == ModelSelection(
        task_complexity="MEDIUM",
        requires_vision=False,
        requires_function_calling=True,
        cost_sensitive=False,
    )
