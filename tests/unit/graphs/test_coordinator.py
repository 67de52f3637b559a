import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from aimesh.agents.specialist import Specialist
from aimesh.context import Context
from aimesh.errors import DelegationLimitError, InvalidInputError
from aimesh.graphs.coordinator import build_coordinator
from aimesh.graphs.run import ask
from aimesh.portfolio.wording import Finding
from tests.fakes import NO_TOOLS, call, calls, scripted


@tool(response_format="content_and_artifact")
def double(x: int) -> tuple[str, dict]:
    """Double a number."""
    if x < 0:
        raise InvalidInputError("x", f"is {x}", "x >= 0")
    return f"double of {x} is {2 * x}", {"x": x, "double": 2 * x}


@tool(response_format="content_and_artifact")
def square(x: int) -> tuple[str, dict]:
    """Square a number."""
    return f"square of {x} is {x * x}", {"x": x, "square": x * x}


SAFE = Finding(
    client_id="C00042",
    text="C00042: churn probability 2.3% (low: below the book's median), rank 5120 of 7043.",
    facts={"churn": "low"},
)


@tool(response_format="content_and_artifact")
def client_risk(client_id: str) -> tuple[str, dict]:
    """A client's churn risk."""
    return SAFE.text, {"findings": [SAFE.model_dump()]}


RISK = Specialist("risk", "Gives a client's churn risk.", (client_risk,), "churn_analyst")
DOUBLER = Specialist("doubler", "Doubles numbers.", (double,), "churn_analyst")
SQUARER = Specialist("squarer", "Squares numbers.", (square,), "billing_analyst")


def run(model, question, *, thread_id="t", context=None, events=None, saver=None):
    graph = build_coordinator(
        model, checkpointer=saver or InMemorySaver(), specialists=[DOUBLER, SQUARER]
    )
    sink = events.append if events is not None else (lambda e: None)
    return ask(graph, question, context=context or Context(), thread_id=thread_id, on_event=sink)


async def test_delegates_and_answers_with_evidence_and_ordered_events():
    model = scripted(
        {
            "ask_doubler": [
                calls(call("ask_doubler", "c1", request="double 21")),
                AIMessage("Double of 21 is 42."),
            ],
            "double": [calls(call("double", "d1", x=21))],
        }
    )
    events = []
    result = await run(model, "What is double 21?", events=events)

    assert result.answer == "Double of 21 is 42."
    assert result.agents == ["doubler"]
    assert [c.model_dump() for c in result.tool_calls] == [
        {"agent": "doubler", "tool": "double", "args": {"x": 21}, "result": {"x": 21, "double": 42}}
    ]
    assert result.tokens.input == 30 and result.tokens.output == 15
    assert result.model == "scripted"
    # the coordinator's first step must delegate
    assert model.seen[0][1].kwargs["tool_choice"] == "any"
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    flow = [
        (e.event, e.agent, e.tool, e.data.get("status"))
        for e in events
        if e.event != "agent" or e.data.get("status") != "model_call"
    ]
    assert flow == [
        ("started", None, None, None),
        ("agent", "doubler", None, "started"),
        ("tool", "doubler", "double", "started"),
        ("tool", "doubler", "double", "finished"),
        ("agent", "doubler", None, "finished"),
        ("result", None, None, None),
        ("complete", None, None, None),
    ]
    model_calls = [e.agent for e in events if e.data.get("status") == "model_call"]
    assert model_calls == ["coordinator", "doubler", "coordinator"]
    # a specialist must call a tool, and stops once its tool round succeeded
    assert [info.kwargs["tool_choice"] for _, info in model.seen if "double" in info.tools] == [
        "any"
    ]


async def test_parallel_delegation_runs_every_specialist():
    model = scripted(
        {
            "ask_doubler": [
                calls(
                    call("ask_doubler", "c1", request="double 3"),
                    call("ask_squarer", "c2", request="square 3"),
                ),
                AIMessage("Double is 6 and square is 9."),
            ],
            "double": [calls(call("double", "d1", x=3))],
            "square": [calls(call("square", "s1", x=3))],
        }
    )
    result = await run(model, "double and square 3")
    assert sorted(result.agents) == ["doubler", "squarer"]
    assert sorted(c.tool for c in result.tool_calls) == ["double", "square"]


async def test_bad_tool_arguments_come_back_as_an_error_the_model_fixes():
    model = scripted(
        {
            "ask_doubler": [
                calls(call("ask_doubler", "c1", request="double -1")),
                AIMessage("Double of 1 is 2."),
            ],
            "double": [
                calls(call("double", "d1", x=-1)),
                calls(call("double", "d2", x=1)),
            ],
        }
    )
    result = await run(model, "double -1")
    error_reply = [
        m
        for msgs, _ in model.seen
        for m in msgs
        if isinstance(m, ToolMessage) and m.status == "error"
    ]
    assert error_reply and "x: is -1 (allowed: x >= 0)" in error_reply[0].text
    assert [c.result for c in result.tool_calls][-1] == {"x": 1, "double": 2}


async def test_findings_of_last_resort_say_why_a_specialist_got_no_result():
    bad = calls(call("double", "d1", x=-1))
    model = scripted(
        {
            "ask_doubler": [
                calls(call("ask_doubler", "c1", request="double -1")),
                AIMessage("Double is 4."),
            ],
            "double": [bad, bad, bad],
            NO_TOOLS: [AIMessage("Double is 4.")],
        }
    )
    result = await run(model, "double -1")
    assert result.answer.startswith("I could not word an answer")
    assert "doubler got no result: a specialist made 3 model calls" in result.answer


async def test_repeated_delegation_ends_with_an_explicit_error():
    same = call("ask_doubler", "c1", request="double 2")
    model = scripted(
        {
            "ask_doubler": [calls(same), calls({**same, "id": "c2"})],
            "double": [calls(call("double", "d1", x=2))],
        }
    )
    events = []
    with pytest.raises(DelegationLimitError, match="at most 1 time"):
        await run(model, "double 2", events=events)
    assert events[-1].event == "error"


async def test_delegation_cap_ends_with_an_explicit_error():
    model = scripted(
        {
            "ask_doubler": [
                calls(*(call("ask_doubler", f"c{i}", request=f"double {i}") for i in range(3)))
            ],
        }
    )
    with pytest.raises(DelegationLimitError, match="cap is 2"):
        await run(model, "many", context=Context(max_delegations=2))


async def test_invented_number_is_rewritten_then_replaced_by_the_results():
    script = {
        "ask_doubler": [
            calls(call("ask_doubler", "c1", request="double 5")),
            AIMessage("Double of 5 is 11."),
        ],
        "double": [calls(call("double", "d1", x=5))],
        NO_TOOLS: [AIMessage("Double of 5 is 10.")],
    }
    result = await run(scripted(script), "double 5")
    assert result.answer == "Double of 5 is 10."

    script["ask_doubler"] = [
        calls(call("ask_doubler", "c1", request="double 5")),
        AIMessage("It is 11."),
    ]
    script["double"] = [calls(call("double", "d1", x=5))]
    script[NO_TOOLS] = [AIMessage("It is 12.")]
    result = await run(scripted(script), "double 5", thread_id="t2")
    assert "11" not in result.answer and "12" not in result.answer
    assert "double of 5 is 10" in result.answer


async def ask_risk(first: str, *rewrites: str) -> tuple[str, str, list]:
    """Ask for C00042's churn risk with these answers: the answer, its check, the calls."""
    script = {
        "ask_risk": [calls(call("ask_risk", "c1", request="risk of C00042")), AIMessage(first)],
        "client_risk": [calls(call("client_risk", "r1", client_id="C00042"))],
        NO_TOOLS: [AIMessage(text) for text in rewrites],
    }
    model = scripted(script)
    graph = build_coordinator(model, checkpointer=InMemorySaver(), specialists=[RISK])
    result = await ask(graph, "How likely is C00042 to churn?", context=Context(), thread_id="t")
    state = await graph.aget_state({"configurable": {"thread_id": "t"}})
    check = state.values["messages"][-1].response_metadata["aimesh_check"]
    return result.answer, check, model.seen


async def test_a_faithful_answer_passes_the_check():
    answer = "C00042 has a 2.3% churn probability, which is low."

    assert (await ask_risk(answer))[:2] == (answer, "passed")


async def test_a_2_3_percent_risk_called_high_is_rewritten_with_the_problem_as_feedback():
    script_answer = "C00042 has a 2.3% churn probability, a high likelihood of churn."
    rewrite = "C00042 has a 2.3% churn probability (low: below the book's median)."

    answer, check, seen = await ask_risk(script_answer, rewrite)

    assert (answer, check) == (rewrite, "rewritten")
    feedback = seen[-1][0][-1].text
    assert "you called C00042's churn risk high; the finding says it is low" in feedback
    assert script_answer not in [m.text for m in seen[-1][0]]  # a small model would copy it


async def test_a_second_misleading_answer_is_replaced_by_the_findings():
    answer, check, _ = await ask_risk(
        "C00042 is at high risk of churn.", "C00042's churn risk is high (2.3%)."
    )

    assert check == "findings"
    assert "high" not in answer and SAFE.text in answer


async def test_follow_up_in_a_thread_tells_the_specialist_what_it_did_before():
    model = scripted(
        {
            "ask_doubler": [
                calls(call("ask_doubler", "c1", request="double 4")),
                AIMessage("8."),
                calls(call("ask_doubler", "c2", request="double 5")),
                AIMessage("10."),
            ],
            "double": [
                calls(call("double", "d1", x=4)),
                calls(call("double", "d2", x=5)),
            ],
        }
    )
    saver = InMemorySaver()
    await run(model, "double 4", saver=saver)
    result = await run(model, "and 5?", saver=saver)
    assert result.answer == "10."
    assert result.agents == ["doubler"]  # only this question's delegations
    specialist_prompt = [msgs for msgs, info in model.seen if "double" in info.tools][-1][-1].text
    assert "the user asked: double 4" in specialist_prompt
    assert "you called double with {'x': 4}: double of 4 is 8" in specialist_prompt
    assert specialist_prompt.endswith(
        "Request from the coordinator: double 5\n\nThe user asks: and 5?"
    )


async def test_specialist_that_never_gets_a_result_reports_an_error_to_the_coordinator():
    script = {
        "ask_doubler": [calls(call("ask_doubler", "c1", request="double -1"))],
        "double": [calls(call("double", f"d{i}", x=-1)) for i in range(3)],
    }
    model = scripted(script)
    script[NO_TOOLS] = []
    script["ask_doubler"].append(AIMessage("The doubler could not get a result."))
    result = await run(model, "double -1")
    assert result.answer == "The doubler could not get a result."
    errors = [
        m.text
        for msgs, info in model.seen
        if "ask_doubler" in info.tools
        for m in msgs
        if isinstance(m, ToolMessage) and m.status == "error"
    ]
    assert errors and "3 model calls without a usable tool result" in errors[0]


@pytest.mark.parametrize("question", ["", "   ", "x" * 2001])
async def test_empty_or_overlong_question_is_refused_before_any_model_call(question):
    model = scripted({})
    with pytest.raises(InvalidInputError, match="question"):
        await run(model, question)
    assert model.seen == []
