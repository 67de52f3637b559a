"""The main job end to end: the real local model, coordinator, specialists and ML models."""

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from aimesh.context import Context
from aimesh.graphs.coordinator import build_coordinator
from aimesh.graphs.grounding import ungrounded_numbers
from aimesh.graphs.run import AskResult, ask
from aimesh.llm.chain import ProviderChain
from aimesh.llm.gguf import packaged_gguf_path
from aimesh.llm.providers import build_providers

pytestmark = pytest.mark.e2e

CHURN = "Which of our clients are most likely to churn, and why?"
TWO_PARTS = "Who is most likely to leave us, and is anyone billed out of line with their services?"
FOLLOW_UP = "And what about the five after those?"
QUESTIONS = [
    ("Are any clients billed out of line with the services they have?", "billing_analyst"),
    (
        "What price change would you recommend for client C01234 without raising its churn risk?",
        "pricing_analyst",
    ),
]


@pytest.fixture(scope="module")
def graph(settings, default_home):
    local = settings.model_copy(update={"gguf_path": packaged_gguf_path(default_home)})
    chain = ProviderChain(providers=build_providers(local))
    return build_coordinator(chain, checkpointer=InMemorySaver())


def offline(sample) -> Context:
    """The run context with no provider key: the local model plans the delegations."""
    return Context(book=sample, plan=True)


def assert_grounded(result: AskResult, question: str) -> None:
    assert result.tool_calls, "no tool was called"
    texts = [c.result for c in result.tool_calls]
    assert all(isinstance(t, dict) for t in texts), f"a tool call failed: {texts}"
    sources = [question, *(_flatten(t) for t in texts)]
    assert ungrounded_numbers(result.answer, sources) == [], result.answer


def _flatten(value: object) -> str:
    """All leaf values of a structured result, space separated."""
    if isinstance(value, dict):
        return " ".join(_flatten(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_flatten(v) for v in value)
    return str(value)


@pytest.mark.parametrize(("question", "specialist"), QUESTIONS)
async def test_question_goes_to_the_right_specialist_and_the_answer_cites_only_tool_figures(
    graph, sample, question, specialist
):
    result = await ask(graph, question, context=offline(sample), thread_id=f"e2e-{specialist}")
    assert result.agents == [specialist]
    assert_grounded(result, question)
    assert result.cost_usd == 0.0
    assert result.tokens.input > 0 and result.tokens.output > 0


async def test_churn_question_and_its_follow_up_list_the_next_clients(graph, sample):
    context = offline(sample)
    first = await ask(graph, CHURN, context=context, thread_id="e2e-churn")
    follow = await ask(graph, FOLLOW_UP, context=context, thread_id="e2e-churn")
    for result, question in ((first, CHURN), (follow, FOLLOW_UP)):
        assert result.agents == ["churn_analyst"]
        assert_grounded(result, question)
    shown, next_five = (_listed(r) for r in (first, follow))
    assert len(shown) == len(next_five) == 5
    assert min(c["rank"] for c in next_five) == max(c["rank"] for c in shown) + 1


async def test_a_two_part_question_runs_both_specialists(graph, sample):
    result = await ask(graph, TWO_PARTS, context=offline(sample), thread_id="e2e-two-parts")
    assert sorted(result.agents) == ["billing_analyst", "churn_analyst"]
    assert_grounded(result, TWO_PARTS)


def _listed(result: AskResult) -> list[dict]:
    """The clients the ranking tool returned in this run."""
    return [
        client
        for call in result.tool_calls
        if call.tool == "top_churn_risks"
        for client in call.result["clients"]
    ]
