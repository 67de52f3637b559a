"""The coordinator's planning step and the check on the client ids a specialist uses."""

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from aimesh.agents.specialist import Specialist
from aimesh.context import Context
from aimesh.graphs.coordinator import build_coordinator
from aimesh.graphs.delegation import specialist_prompt
from aimesh.graphs.plan import delegations, plan_tool, question_parts
from aimesh.graphs.run import ask
from tests.fakes import call, calls, scripted
from tests.unit.graphs.test_coordinator import DOUBLER, SQUARER


@tool(response_format="content_and_artifact")
def lookup(client_id: str) -> tuple[str, dict]:
    """Look one client up."""
    return f"client {client_id} found", {"client_id": client_id}


LOOKER = Specialist("looker", "Looks clients up.", (lookup,), "churn_analyst")
PLANNED = Context(plan=True)


def run(model, question, *, thread_id="t", saver=None, specialists=(DOUBLER, SQUARER)):
    graph = build_coordinator(
        model, checkpointer=saver or InMemorySaver(), specialists=list(specialists)
    )
    return ask(graph, question, context=PLANNED, thread_id=thread_id)


def plan(*agents: str) -> AIMessage:
    return calls(call("plan", "p1", steps=[{"agent": a} for a in agents]))


async def test_a_two_part_question_is_planned_and_both_specialists_run():
    model = scripted(
        {
            "plan": [plan("doubler", "squarer")],
            "ask_doubler": [AIMessage("Double is 6 and square is 9.")],
            "double": [calls(call("double", "d1", x=3))],
            "square": [calls(call("square", "s1", x=3))],
        }
    )
    result = await run(model, "What is double 3, and what is the square of 3?")
    assert sorted(result.agents) == ["doubler", "squarer"]
    prompts = {info.tools[0]: msgs[-1].text for msgs, info in model.seen if info.tools}
    # each specialist is given its part alone (a small model answers all it reads)
    part = "The user asks (your part of a longer question; other analysts answer the rest): "
    assert prompts["double"] == f"{part}What is double 3"
    assert prompts["square"] == f"{part}what is the square of 3?"
    assert result.answer == "Double is 6 and square is 9."
    plan_call = next(info for _, info in model.seen if "plan" in info.tools)
    assert plan_call.kwargs["tool_choice"] == "plan" and plan_call.tools == ["plan"]
    # after the results the coordinator may still add a step: its tools, not required
    follow_up = [info for _, info in model.seen if "ask_doubler" in info.tools]
    assert [info.kwargs["tool_choice"] for info in follow_up] == [None]


def test_a_plan_naming_no_known_specialist_is_no_delegation():
    written = calls(
        call("plan", "p1", steps=[{"specialist": "doubler"}, "squarer", {"agent": "x"}])
    )
    planned = delegations(written, ["a b c", "d e f", "g h i"], ["doubler", "squarer"])
    assert [c["args"] for c in planned.tool_calls] == [{"request": "d e f"}]


async def test_a_specialist_named_twice_in_a_plan_is_asked_once():
    model = scripted(
        {
            "plan": [plan("doubler", "doubler")],
            "ask_doubler": [AIMessage("Double is 6.")],
            "double": [calls(call("double", "d1", x=3))],
        }
    )
    result = await run(model, "Double 3, and what is double 3 again?")
    assert result.agents == ["doubler"] and len(result.tool_calls) == 1


async def test_an_empty_plan_says_what_cannot_be_answered_and_gives_no_figure():
    model = scripted({"plan": [plan("none")]})
    result = await run(model, "What is the price elasticity of orange juice?")
    assert result.agents == [] and result.tool_calls == []
    assert result.answer.startswith("None of aimesh's analyses answers this question")
    assert "doubler: Doubles numbers." in result.answer


def test_the_plan_tool_has_one_step_per_part_naming_a_specialist_or_none():
    steps = plan_tool([DOUBLER, SQUARER], 2)["function"]["parameters"]["properties"]["steps"]
    assert steps["items"]["properties"]["agent"]["enum"] == ["doubler", "squarer", "none"]
    assert steps["minItems"] == steps["maxItems"] == 2


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("Which clients will churn, and why?", ["Which clients will churn, and why?"]),
        (
            "Is C00042 billed right, and what price should it pay?",
            ["Is C00042 billed right", "what price should it pay?"],
        ),
        ("Who churns? Who is overbilled?", ["Who churns?", "Who is overbilled?"]),
        (
            "For C00905: its churn risk, and what is its best price?",
            ["For C00905: its churn risk", "what is its best price?"],
        ),
        ("Can we raise its rate, and by how much?", ["Can we raise its rate, and by how much?"]),
        (
            "For C00905, what is the churn risk, and what price should we offer?",
            ["For C00905 what is the churn risk", "what price should we offer?"],
        ),
        ("Compare C00042 vs. C00050.", ["Compare C00042 vs. C00050."]),
        ("Top churn risks. Thanks.", ["Top churn risks. Thanks."]),
        (
            "Who may churn, who is billed oddly, how would prices move, and what else is new?",
            ["Who may churn", "who is billed oddly", "how would prices move, what else is new?"],
        ),
        (
            "List the likeliest churners and any invoices out of line.",
            ["List the likeliest churners", "any invoices out of line."],
        ),
        (
            "C00077: renewal odds, a fair rate and an audit of its bill",
            ["C00077: renewal odds", "a fair rate", "an audit of its bill"],
        ),
        (
            "Which clients on fiber and the two-year contract may leave?",
            ["Which clients on fiber and the two-year contract may leave?"],
        ),
        ("Is there a risk?", ["Is there a risk?"]),
        (
            "Which clients have a fiber plan and a two-year contract?",
            ["Which clients have a fiber plan and a two-year contract?"],
        ),
        (
            "What is the churn risk for C00042, a client on fiber?",
            ["What is the churn risk for C00042, a client on fiber?"],
        ),
        (
            "How likely is C00042 to churn, and any idea why?",
            ["How likely is C00042 to churn, and any idea why?"],
        ),
        (
            "Thanks. For C00042, what is its churn risk?",
            ["Thanks. For C00042 what is its churn risk?"],
        ),
    ],
)
def test_a_question_is_split_into_the_asks_it_joins(question, parts):
    assert question_parts(question) == parts


async def test_a_client_id_nobody_gave_is_refused_before_the_tool_runs():
    invented = calls(call("lookup", "l1", client_id="C01234"))  # the id is the model's own
    model = scripted(
        {
            "plan": [plan("looker")],
            "lookup": [invented, invented, invented],
            "ask_looker": [AIMessage("No client could be looked up.")],
        }
    )
    result = await run(model, "Which client is riskiest?", specialists=[LOOKER])
    refused = [
        m
        for msgs, _ in model.seen
        for m in msgs
        if isinstance(m, ToolMessage) and m.status == "error"
    ]
    assert "'C01234' is named neither in the user's question" in refused[0].text
    assert result.tool_calls == [] and result.answer == "No client could be looked up."


async def test_client_ids_from_the_question_or_an_earlier_result_are_used():
    model = scripted(
        {
            "plan": [plan("looker"), plan("looker")],
            "ask_looker": [AIMessage("Found."), AIMessage("Found again.")],
            "lookup": [
                calls(call("lookup", "l1", client_id="C00042")),  # the question wrote c42
                calls(call("lookup", "l2", client_id="C00042")),  # shown by the earlier result
            ],
        }
    )
    saver = InMemorySaver()
    first = await run(model, "Look up client c42.", saver=saver, specialists=[LOOKER])
    again = await run(model, "And that one again?", saver=saver, specialists=[LOOKER])
    assert first.tool_calls[0].result == {"client_id": "C00042"}
    assert again.tool_calls[0].result == {"client_id": "C00042"}


def test_a_part_without_the_questions_client_id_is_given_the_id(sample):
    question = HumanMessage("For C905: its churn risk, and is it billed right?")
    prompt = specialist_prompt([question], "billing_analyst", "is it billed right?", sample)
    assert prompt.endswith("is it billed right?\n\nClient ids in the whole question: C00905")
    with_id = specialist_prompt([question], "churn_analyst", "For C905: its churn risk", sample)
    assert "Client ids" not in with_id


def test_a_request_of_every_part_is_the_whole_question(sample):
    question = HumanMessage("For C00042, what is its churn risk?")
    prompt = specialist_prompt(
        [question], "churn_analyst", "For C00042 what is its churn risk", sample
    )
    assert prompt == "The user asks: For C00042, what is its churn risk?"


def test_parts_cut_to_fit_the_request_reach_the_specialist_whole(sample):
    long = "which of the clients on fiber with paperless billing " * 5
    question = f"Who is likely to churn {long}, and is anyone billed out of line {long}?"
    parts = question_parts(question)
    request = delegations(plan("doubler", "doubler"), parts, ["doubler"]).tool_calls[0]["args"]
    assert len(request["request"]) <= 300
    prompt = specialist_prompt([HumanMessage(question)], "doubler", request["request"], sample)
    assert prompt == f"The user asks: {question}"
    one = delegations(plan("doubler", "squarer"), parts, ["doubler", "squarer"]).tool_calls[0]
    alone = specialist_prompt([HumanMessage(question)], "doubler", one["args"]["request"], sample)
    assert alone.endswith(parts[0])
