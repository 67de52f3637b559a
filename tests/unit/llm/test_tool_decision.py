import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from aimesh.errors import ProviderError
from aimesh.llm.local_messages import to_chat_turns
from aimesh.llm.tool_decision import (
    DECISION_INSTRUCTION,
    decision_schema,
    decision_turns,
    parse_decision,
    select_tools,
)


@tool
def ask_churn_analyst(request: str, client_id: str | None = None) -> str:
    """Ask the churn analyst about churn risk."""
    return request


@tool
def ask_billing_analyst(request: str, month: str | None = None) -> str:
    """Ask the billing analyst about billing anomalies."""
    return request


TOOLS = [convert_to_openai_tool(t) for t in (ask_churn_analyst, ask_billing_analyst)]


def test_schema_has_one_branch_per_tool_with_its_parameters() -> None:
    schema = decision_schema(TOOLS, required=False)
    items = schema["properties"]["tool_calls"]["items"]["anyOf"]
    assert [i["properties"]["name"] for i in items] == [
        {"const": "ask_churn_analyst"},
        {"const": "ask_billing_analyst"},
    ]
    assert items[0]["properties"]["arguments"] == TOOLS[0]["function"]["parameters"]
    assert schema["required"] == ["tool_calls"]
    assert "minItems" not in schema["properties"]["tool_calls"]


def test_schema_requires_a_call_when_asked() -> None:
    assert decision_schema(TOOLS, required=True)["properties"]["tool_calls"]["minItems"] == 1


def test_schema_compiles_to_a_llama_grammar() -> None:
    from llama_cpp import LlamaGrammar

    LlamaGrammar.from_json_schema(json.dumps(decision_schema(TOOLS, required=True)), verbose=False)


@pytest.mark.parametrize(
    ("choice", "names", "required"),
    [
        (None, ["ask_churn_analyst", "ask_billing_analyst"], False),
        ("auto", ["ask_churn_analyst", "ask_billing_analyst"], False),
        ("none", [], False),
        ("any", ["ask_churn_analyst", "ask_billing_analyst"], True),
        ("required", ["ask_churn_analyst", "ask_billing_analyst"], True),
        (True, ["ask_churn_analyst", "ask_billing_analyst"], True),
        ("ask_billing_analyst", ["ask_billing_analyst"], True),
        (
            {"type": "function", "function": {"name": "ask_churn_analyst"}},
            ["ask_churn_analyst"],
            True,
        ),
    ],
)
def test_tool_choice(choice: object, names: list[str], required: bool) -> None:
    tools, must_call = select_tools(TOOLS, choice)  # type: ignore[arg-type]
    assert [t["function"]["name"] for t in tools] == names and must_call is required


def test_unknown_tool_choice_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="ask_pricing_analyst"):
        select_tools(TOOLS, "ask_pricing_analyst")


def test_decision_json_maps_to_parallel_tool_calls() -> None:
    text = json.dumps(
        {
            "tool_calls": [
                {
                    "name": "ask_churn_analyst",
                    "arguments": {"request": "who churns?", "client_id": None},
                },
                {
                    "name": "ask_billing_analyst",
                    "arguments": {"request": "March anomalies", "month": "March"},
                },
            ]
        }
    )
    calls = parse_decision(text)
    assert [(c["name"], c["args"]) for c in calls] == [
        ("ask_churn_analyst", {"request": "who churns?", "client_id": None}),
        ("ask_billing_analyst", {"request": "March anomalies", "month": "March"}),
    ]
    assert all(c["id"].startswith("call_") and len(c["id"]) == 37 for c in calls)
    assert len({c["id"] for c in calls}) == 2 and all(c["type"] == "tool_call" for c in calls)


def test_no_tool_decision_is_an_empty_list() -> None:
    assert parse_decision('{"tool_calls": []}') == []


@pytest.mark.parametrize(
    "text", ['{"tool_calls": [{"name": "x", "argu', "", '{"calls": []}', "[1]"]
)
def test_truncated_or_malformed_decision_is_a_provider_error(text: str) -> None:
    with pytest.raises(ProviderError, match="malformed tool decision"):
        parse_decision(text)


def test_decision_turns_describe_tools_and_end_with_the_instruction() -> None:
    turns = decision_turns(
        [{"role": "system", "content": "You coordinate."}, {"role": "user", "content": "hi"}], TOOLS
    )
    assert turns[0]["role"] == "system" and turns[0]["content"].startswith("You coordinate.\n\n")
    assert "- ask_churn_analyst: Ask the churn analyst about churn risk." in turns[0]["content"]
    assert '"client_id"' in turns[0]["content"]  # argument schema is described
    assert turns[1] == {"role": "user", "content": "hi"}
    assert turns[-1] == {"role": "system", "content": DECISION_INSTRUCTION}


def test_decision_turns_add_a_system_turn_when_there_is_none() -> None:
    turns = decision_turns([{"role": "user", "content": "hi"}], TOOLS)
    assert turns[0]["content"].startswith("You can call these tools:") and len(turns) == 3


def test_history_with_tool_calls_and_results_is_rendered_as_text() -> None:
    calls = [
        {
            "name": "ask_churn_analyst",
            "args": {"request": "who?"},
            "id": "call_1",
            "type": "tool_call",
        },
        {
            "name": "ask_billing_analyst",
            "args": {"request": "March"},
            "id": "call_2",
            "type": "tool_call",
        },
    ]
    turns = to_chat_turns(
        [
            SystemMessage("You coordinate."),
            HumanMessage("Who churns, and March anomalies?"),
            AIMessage("Asking both.", tool_calls=calls),
            ToolMessage('{"top": "C00017"}', tool_call_id="call_1"),
            ToolMessage("month must be YYYY-MM", tool_call_id="call_2", status="error"),
            AIMessage("C00017 may churn."),
        ]
    )
    assert [t["role"] for t in turns] == [
        "system",
        "user",
        "assistant",
        "user",
        "user",
        "assistant",
    ]
    assert turns[2]["content"] == (
        'Asking both.\n{"tool_calls": ['
        '{"name": "ask_churn_analyst", "arguments": {"request": "who?"}}, '
        '{"name": "ask_billing_analyst", "arguments": {"request": "March"}}]}'
    )
    assert (
        turns[3]["content"]
        == 'Result of ask_churn_analyst({"request": "who?"}):\n{"top": "C00017"}'
    )
    assert (
        turns[4]["content"]
        == 'Error from ask_billing_analyst({"request": "March"}):\nmonth must be YYYY-MM'
    )
    assert turns[5] == {"role": "assistant", "content": "C00017 may churn."}


def test_list_content_is_rendered_as_its_text() -> None:
    turns = to_chat_turns([HumanMessage(content=[{"type": "text", "text": "hello"}])])
    assert turns == [{"role": "user", "content": "hello"}]
