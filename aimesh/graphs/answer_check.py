"""The check of a coordinator answer against the tool results of its thread.

Two checks: every number comes from a result, a question or recalled memory
(:mod:`aimesh.graphs.grounding`), and the wording agrees with the results' findings
(:mod:`aimesh.graphs.faithfulness`). The results are read from the specialists' reports,
the artifacts of the coordinator's ToolMessages (see
:class:`~aimesh.agents.specialist.SpecialistReport`).
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage, ToolMessage

from aimesh.graphs.faithfulness import faithfulness_problems
from aimesh.graphs.grounding import ungrounded_numbers
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.wording import Finding

CHECK = "aimesh_check"
"""``response_metadata`` key of the final answer: how it passed the check, ``passed``
(first answer), ``rewritten`` (after one rewrite) or ``findings`` (replaced by them)."""


def _successes(messages: list[AnyMessage]) -> list[dict[str, Any]]:
    """Every successful tool call record of the specialists' reports in ``messages``."""
    return [
        call
        for m in messages
        if isinstance(m, ToolMessage) and isinstance(m.artifact, dict)
        for call in m.artifact.get("tool_calls", [])
        if call["status"] == "success"
    ]


def tool_sources(messages: list[AnyMessage]) -> list[str]:
    """Texts an answer may cite: the questions and every successful ML tool result."""
    questions = [str(m.text) for m in messages if isinstance(m, HumanMessage)]
    return questions + [call["content"] for call in _successes(messages)]


def tool_findings(messages: list[AnyMessage]) -> list[Finding]:
    """The findings of every successful ML tool result (results without any give none)."""
    return [
        Finding.model_validate(finding)
        for call in _successes(messages)
        if isinstance(call["result"], dict)
        for finding in call["result"].get("findings", [])
    ]


@dataclass(frozen=True)
class AnswerCheck:
    """What an answer of a thread is checked against.

    Attributes:
        sources: Texts its numbers may come from (questions, tool results, memory).
        cited: The questions and memory lines (ids and figures it may use freely).
        findings: The tool results' findings.
        book_ids: The client ids of the run's book.
    """

    sources: list[str]
    cited: list[str]
    findings: list[Finding]
    book_ids: Collection[str]

    @classmethod
    def of(
        cls, messages: list[AnyMessage], memory: Sequence[str], book: ClientBook
    ) -> "AnswerCheck":
        """The check of an answer to ``messages`` (the thread), given recalled ``memory``."""
        questions = [str(m.text) for m in messages if isinstance(m, HumanMessage)]
        return cls(
            sources=[*tool_sources(messages), *memory],
            cited=[*questions, *memory],
            findings=tool_findings(messages),
            book_ids=book.ids(),
        )

    def problems(self, answer: str) -> list[str]:
        """What is wrong with ``answer``: ungrounded numbers first, then wording problems."""
        bad = ungrounded_numbers(answer, self.sources)
        numbers = [f"you cited {', '.join(bad)}, found in no tool result."] if bad else []
        return numbers + faithfulness_problems(answer, self.findings, self.cited, self.book_ids)


def feedback(problems: Sequence[str]) -> str:
    """The rewrite request listing ``problems``, for the model that wrote the answer.

    It goes with the results but without the failed answer: shown its own answer, the local
    1.5B model repeated it word for word (three questions of three); without it, it wrote
    a new one.
    """
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        "Answer the question from the specialists' results. A first answer had these "
        f"problems; do not repeat them:\n{listed}\nQuote the findings' figures and direction "
        "words exactly as written, each under its own client, and name only clients that "
        "appear in the results."
    )
