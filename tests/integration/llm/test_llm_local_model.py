"""The real local model through the adapter: tool decisions and answers (slow: runs the GGUF)."""

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, tool

from aimesh.config import Settings
from aimesh.llm.gguf import packaged_gguf_path
from aimesh.llm.local import LocalChatModel

pytestmark = pytest.mark.e2e

SYSTEM = SystemMessage(
    "You are the coordinator of an MSP's analysts. Delegate each question to the right "
    "analyst, then answer the user citing the analysts' numbers."
)


@tool
def ask_churn_analyst(request: str, client_id: str | None = None) -> str:
    """Ask the churn analyst about client churn risk, retention and which clients may leave."""
    return request


@tool
def ask_billing_analyst(request: str, month: str | None = None) -> str:
    """Ask the billing analyst about invoices, billing anomalies and unusual charges."""
    return request


@tool
def ask_pricing_analyst(request: str, service: str | None = None) -> str:
    """Ask the pricing analyst about price changes, elasticity and recommended prices."""
    return request


TOOLS: list[BaseTool] = [ask_churn_analyst, ask_billing_analyst, ask_pricing_analyst]
BY_NAME = {t.name: t for t in TOOLS}


@pytest.fixture(scope="module")
def model(default_home, settings: Settings) -> LocalChatModel:
    return LocalChatModel.from_settings(settings, packaged_gguf_path(default_home))


def assert_valid_calls(message: AIMessage, expected: list[str]) -> None:
    assert [c["name"] for c in message.tool_calls] == expected, message.tool_calls
    for call in message.tool_calls:
        BY_NAME[call["name"]].args_schema.model_validate(call["args"])  # type: ignore[union-attr]
        assert call["id"].startswith("call_")


@pytest.mark.parametrize(
    ("question", "analyst"),
    [
        (
            "Which of our clients are most likely to cancel their contracts next quarter?",
            "ask_churn_analyst",
        ),
        ("Did anything look odd on the March invoices?", "ask_billing_analyst"),
        (
            "How much can we raise the price of managed backup without losing customers?",
            "ask_pricing_analyst",
        ),
        ("Is client C00042 at risk of leaving us?", "ask_churn_analyst"),
        ("Find unusual charges in last month's billing.", "ask_billing_analyst"),
        ("What should we charge for endpoint security next year?", "ask_pricing_analyst"),
    ],
)
async def test_picks_the_right_analyst_with_valid_arguments(
    model: LocalChatModel, question: str, analyst: str
) -> None:
    message = await model.bind_tools(TOOLS).ainvoke([SYSTEM, HumanMessage(question)])
    assert_valid_calls(message, [analyst])


async def test_a_decision_holds_one_call_even_for_a_two_part_question(
    model: LocalChatModel,
) -> None:
    question = "Which clients might churn, and are there billing anomalies in March?"
    message = await model.bind_tools(TOOLS).ainvoke([SYSTEM, HumanMessage(question)])
    assert_valid_calls(message, ["ask_churn_analyst"])
    assert model._loaded().cache.cache_size > 0  # prompt states kept for the next call


async def test_answers_from_tool_results_without_calling_again(model: LocalChatModel) -> None:
    call = {
        "name": "ask_churn_analyst",
        "args": {"request": "Is C00042 at risk?", "client_id": "C00042"},
        "id": "call_1",
        "type": "tool_call",
    }
    history = [
        SYSTEM,
        HumanMessage("Is client C00042 at risk of leaving us?"),
        AIMessage("", tool_calls=[call]),
        ToolMessage('{"client_id": "C00042", "churn_probability": 0.63}', tool_call_id="call_1"),
    ]
    parts = [p async for p in model.bind_tools(TOOLS).astream(history)]
    answer = parts[0]
    for part in parts[1:]:
        answer += part
    assert answer.tool_calls == [] and "0.63" in answer.text
    assert len([p for p in parts if p.text]) > 3  # streamed token by token
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0
    assert answer.response_metadata["finish_reason"] == "stop"
