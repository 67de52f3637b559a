"""Tool calling for a local model that has no native tool-call output.

The model is asked for one JSON decision whose shape a JSON-schema grammar enforces:
the call's ``name`` is the ``const`` of one tool and its ``arguments`` follow that tool's
parameter schema. A decision holds at most one call; a question that needs several tools
gets them one decision at a time.

* First decision of a turn: ``{"tool_calls": [call]}``, an empty list meaning "answer".
* Once tool results came in: ``{"next": "answer"}`` or
  ``{"next": "call_tools", "tool_calls": [call]}``. Committing to "answer" first is what
  stops a small model from calling the same tool again: on Qwen2.5-Coder-1.5B it decided
  4/5 follow-ups right, against 1/5 with the list form.

One call per decision, because Qwen2.5-Coder-1.5B given a list enumerates the catalogue:
routing 8 MSP questions to the coordinator's three specialists, it picked exactly the right
ones for 4/8 with up to one call per tool and for 6/8 with one call, the misses being an
ambiguous question and a two-part one, which gets its first part only (the follow-up
decision did not add the second). Remote models keep native parallel tool calls.

The tools are described in the system prompt (name, description, argument schema) and
the decision instruction is a final system turn after the conversation (11/11 right on
a small set, against 8/11 with the instruction in the first system turn).
"""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.messages.tool import tool_call

from aimesh.errors import ProviderError
from aimesh.llm.local_messages import ChatTurn

OpenAITool = dict[str, Any]
ToolChoice = str | dict[str, Any] | bool | None

_REQUIRED_CHOICES = frozenset({"any", "required"})
_CALL_FORMAT = '"tool_calls": [{"name": <tool name>, "arguments": {...}}]'

FIRST_INSTRUCTION = (
    f"Decide the next step. Reply with a JSON object {{{_CALL_FORMAT}}} with the one tool "
    'call the question needs first, or {"tool_calls": []} when no tool fits.'
)
FILL_INSTRUCTION = (
    f"Reply with a JSON object {{{_CALL_FORMAT}}} calling {{name}}, its arguments filled in "
    "for the conversation above."
)
FOLLOW_UP_INSTRUCTION = (
    'Decide the next step. Reply {"next": "answer"} when the tool results above already '
    "answer the question or when no tool fits; otherwise reply "
    f'{{"next": "call_tools", {_CALL_FORMAT}}} with the one tool call still needed.'
)


@dataclass(frozen=True)
class ToolDecision:
    """How to ask the model which tools to call.

    Attributes:
        tools: OpenAI-format tools the model may call.
        required: Whether it must call at least one.
        follow_up: Whether tool results arrived since the user's last message.
    """

    tools: list[OpenAITool]
    required: bool
    follow_up: bool

    @classmethod
    def for_call(
        cls, tools: Sequence[OpenAITool], tool_choice: ToolChoice, messages: Sequence[BaseMessage]
    ) -> "ToolDecision | None":
        """The decision to ask for, or None when no tool may be called.

        Args:
            tools: Bound OpenAI-format tools.
            tool_choice: See :func:`select_tools`.
            messages: The conversation.

        Raises:
            ValueError: ``tool_choice`` names a tool that is not bound.
        """
        chosen, required = select_tools(tools, tool_choice)
        if not chosen:
            return None
        return cls(chosen, required, _results_since_user(messages))

    def schema(self) -> dict[str, Any]:
        """JSON schema for ``response_format={"type": "json_object", "schema": ...}``."""
        calls = [_call_schema(t) for t in self.tools]
        array: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}, "maxItems": 1}
        if not self.follow_up:
            return _object(tool_calls={**array, "minItems": int(self.required)})
        call_tools = _object(next={"const": "call_tools"}, tool_calls={**array, "minItems": 1})
        if self.required:
            return call_tools
        return {"anyOf": [_object(next={"const": "answer"}), call_tools]}

    def turns(self, turns: Sequence[ChatTurn]) -> list[ChatTurn]:
        """The conversation with the tool catalogue and the decision instruction added.

        Args:
            turns: Rendered conversation; a leading system turn is extended.

        Returns:
            ``[system + catalogue, *conversation, system instruction]``.
        """
        catalogue = _catalogue(self.tools)
        if turns and turns[0]["role"] == "system":
            head = {"role": "system", "content": f"{turns[0]['content']}\n\n{catalogue}"}
            body = list(turns[1:])
        else:
            head, body = {"role": "system", "content": catalogue}, list(turns)
        return [head, *body, {"role": "system", "content": self.instruction()}]

    def instruction(self) -> str:
        """The decision asked for: fill in the one required tool, or choose a call."""
        if self.follow_up:
            return FOLLOW_UP_INSTRUCTION
        if self.required and len(self.tools) == 1:
            return FILL_INSTRUCTION.replace("{name}", self.tools[0]["function"]["name"])
        return FIRST_INSTRUCTION


def select_tools(
    tools: Sequence[OpenAITool], tool_choice: ToolChoice
) -> tuple[list[OpenAITool], bool]:
    """Apply a LangChain ``tool_choice`` to the bound tools.

    Args:
        tools: OpenAI-format tools (``{"type": "function", "function": {...}}``).
        tool_choice: ``None``/``"auto"`` (model decides), ``"none"`` (no tools),
            ``"any"``/``"required"``/``True`` (at least one call), a tool name or
            ``{"type": "function", "function": {"name": ...}}`` (that tool).

    Returns:
        The tools the model may call and whether it must call at least one.

    Raises:
        ValueError: ``tool_choice`` names a tool that is not bound.
    """
    if isinstance(tool_choice, dict):
        return _only(tools, tool_choice["function"]["name"]), True
    if tool_choice is None or tool_choice is False or tool_choice == "auto":
        return list(tools), False
    if tool_choice == "none":
        return [], False
    if tool_choice is True or tool_choice in _REQUIRED_CHOICES:
        return list(tools), True
    return _only(tools, tool_choice), True


def parse_decision(text: str) -> list[ToolCall]:
    """Map the model's decision JSON to LangChain tool calls.

    Args:
        text: The constrained model output (either decision form).

    Returns:
        One ``ToolCall`` per entry, with ids ``call_<uuid hex>``; empty for "answer".

    Raises:
        ProviderError: The output is not a complete decision (e.g. cut by max tokens).
    """
    try:
        decision = json.loads(text)
        entries = [] if decision.get("next") == "answer" else decision["tool_calls"]
        return [
            tool_call(name=e["name"], args=dict(e["arguments"]), id=f"call_{uuid.uuid4().hex}")
            for e in entries
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        message = f"local model returned a malformed tool decision: {text[:200]!r}"
        raise ProviderError(message) from exc


def _only(tools: Sequence[OpenAITool], name: str) -> list[OpenAITool]:
    chosen = [t for t in tools if t["function"]["name"] == name]
    if not chosen:
        raise ValueError(f"tool_choice {name!r} is not one of the bound tools")
    return chosen


def _results_since_user(messages: Sequence[BaseMessage]) -> bool:
    for message in reversed(messages):
        if isinstance(message, ToolMessage):
            return True
        if isinstance(message, HumanMessage):
            return False
    return False


def _call_schema(tool: OpenAITool) -> dict[str, Any]:
    function = tool["function"]
    return _object(
        name={"const": function["name"]},
        arguments=function.get("parameters") or {"type": "object"},
    )


def _object(**properties: Any) -> dict[str, Any]:
    """An object schema whose properties are all required, in the given order."""
    return {"type": "object", "properties": properties, "required": list(properties)}


def _catalogue(tools: Sequence[OpenAITool]) -> str:
    lines = ["You can call these tools:"]
    for t in tools:
        function = t["function"]
        parameters = json.dumps(function.get("parameters") or {}, ensure_ascii=False)
        lines.append(
            f"- {function['name']}: {function.get('description', '')}\n"
            f"  arguments (JSON schema): {parameters}"
        )
    return "\n".join(lines)
