import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from aimesh.errors import ProviderError
from aimesh.llm.local_messages import to_chat_turns
from aimesh.llm.tool_decision import (
    FIRST_INSTRUCTION,
    FOLLOW_UP_INSTRUCTION,
    ToolDecision,
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


def first(required: bool = False) -> ToolDecision:
    return ToolDecision(TOOLS, required=required, follow_up=False)


def follow_up(required: bool = False) -> ToolDecision:
    return ToolDecision(TOOLS, required=required, follow_up=True)


def test_first_decision_schema_has_one_branch_per_tool_with_its_parameters() -> None:
    schema = first().schema()
    array = schema["properties"]["tool_calls"]
    items = array["items"]["anyOf"]
    assert [i["properties"]["name"] for i in items] == [
        {"const": "ask_churn_analyst"},
        {"const": "ask_billing_analyst"},
    ]
    assert items[0]["properties"]["arguments"] == TOOLS[0]["function"]["parameters"]
    assert items[0]["required"] == ["name", "arguments"]
    assert schema["required"] == ["tool_calls"]
    assert (array["minItems"], array["maxItems"]) == (0, 1)  # no call or one call


def test_first_decision_requires_a_call_when_asked() -> None:
    assert first(required=True).schema()["properties"]["tool_calls"]["minItems"] == 1


def test_follow_up_schema_commits_to_answer_or_calls_first() -> None:
    answer, call_tools = follow_up().schema()["anyOf"]
    assert answer["properties"] == {"next": {"const": "answer"}}
    assert list(call_tools["properties"]) == ["next", "tool_calls"]
    assert call_tools["properties"]["next"] == {"const": "call_tools"}
    assert call_tools["properties"]["tool_calls"]["minItems"] == 1
    assert follow_up(required=True).schema() == call_tools


@pytest.mark.parametrize("decision", [first(), first(True), follow_up(), follow_up(True)])
def test_schemas_compile_to_llama_grammars(decision: ToolDecision) -> None:
    from llama_cpp import LlamaGrammar

    LlamaGrammar.from_json_schema(json.dumps(decision.schema()), verbose=False)


def test_follow_up_is_detected_from_results_since_the_user_spoke() -> None:
    call = {"name": "ask_churn_analyst", "args": {"request": "x"}, "id": "c1", "type": "tool_call"}
    asked = [HumanMessage("who churns?")]
    answered = [*asked, AIMessage("", tool_calls=[call]), ToolMessage("C00017", tool_call_id="c1")]
    assert ToolDecision.for_call(TOOLS, None, asked) == first()
    assert ToolDecision.for_call(TOOLS, None, answered) == follow_up()
    assert ToolDecision.for_call(TOOLS, "any", [*answered, HumanMessage("and billing?")]) == first(
        True
    )
    assert ToolDecision.for_call(TOOLS, "none", asked) is None


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


def test_no_tool_decisions_are_empty() -> None:
    assert parse_decision('{"tool_calls": []}') == []
    assert parse_decision('{"next": "answer"}') == []


def test_follow_up_calls_are_parsed() -> None:
    call = {"name": "ask_billing_analyst", "arguments": {"request": "March"}}
    text = json.dumps({"next": "call_tools", "tool_calls": [call]})
    assert [c["name"] for c in parse_decision(text)] == ["ask_billing_analyst"]


@pytest.mark.parametrize(
    "text", ['{"tool_calls": [{"name": "x", "argu', "", '{"calls": []}', "[1]"]
)
def test_truncated_or_malformed_decision_is_a_provider_error(text: str) -> None:
    with pytest.raises(ProviderError, match="malformed tool decision"):
        parse_decision(text)


def test_decision_turns_describe_tools_and_end_with_the_instruction() -> None:
    turns = first().turns(
        [{"role": "system", "content": "You coordinate."}, {"role": "user", "content": "hi"}]
    )
    assert turns[0]["role"] == "system" and turns[0]["content"].startswith("You coordinate.\n\n")
    assert "- ask_churn_analyst: Ask the churn analyst about churn risk." in turns[0]["content"]
    assert '"client_id"' in turns[0]["content"]  # argument schema is described
    assert turns[1] == {"role": "user", "content": "hi"}
    assert turns[-1] == {"role": "system", "content": FIRST_INSTRUCTION}
    assert follow_up().turns(turns[1:2])[-1] == {"role": "system", "content": FOLLOW_UP_INSTRUCTION}


def test_decision_turns_add_a_system_turn_when_there_is_none() -> None:
    turns = first().turns([{"role": "user", "content": "hi"}])
    assert turns[0]["content"].startswith("You can call these tools:") and len(turns) == 3


def test_history_renders_results_naming_their_calls_and_drops_bare_call_turns() -> None:
    churn = {
        "name": "ask_churn_analyst",
        "args": {"request": "who?"},
        "id": "c1",
        "type": "tool_call",
    }
    bill = {
        "name": "ask_billing_analyst",
        "args": {"request": "March"},
        "id": "c2",
        "type": "tool_call",
    }
    turns = to_chat_turns(
        [
            SystemMessage("You coordinate."),
            HumanMessage("Who churns, and March anomalies?"),
            AIMessage("Asking both.", tool_calls=[churn]),
            AIMessage("", tool_calls=[bill]),
            ToolMessage('{"top": "C00017"}', tool_call_id="c1"),
            ToolMessage("month must be YYYY-MM", tool_call_id="c2", status="error"),
            ToolMessage("orphan", tool_call_id="c9", name="ask_pricing_analyst"),
            AIMessage("C00017 may churn."),
        ]
    )
    assert turns == [
        {"role": "system", "content": "You coordinate."},
        {"role": "user", "content": "Who churns, and March anomalies?"},
        {"role": "assistant", "content": "Asking both."},
        {
            "role": "user",
            "content": 'Result of ask_churn_analyst:\n{"top": "C00017"}',
        },
        {
            "role": "user",
            "content": "Error from ask_billing_analyst:\nmonth must be YYYY-MM",
        },
        {"role": "user", "content": "Result of ask_pricing_analyst:\norphan"},
        {"role": "assistant", "content": "C00017 may churn."},
    ]


def test_list_content_is_rendered_as_its_text() -> None:
    turns = to_chat_turns([HumanMessage(content=[{"type": "text", "text": "hello"}])])
    assert turns == [{"role": "user", "content": "hello"}]
