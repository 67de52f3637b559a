"""Tool calling for a local model that has no native tool-call output.

The model is asked for one JSON decision, ``{"tool_calls": [{"name", "arguments"}...]}``,
whose shape is enforced by a JSON-schema grammar: each entry's ``name`` is the
``const`` of one tool and its ``arguments`` follow that tool's parameter schema. Several
entries are parallel calls; an empty list means "answer without tools".

The tools are described in the system prompt (name, description, argument schema) and
the decision instruction is a final system turn after the conversation: measured on
Qwen2.5-Coder-1.5B, that placement decided 11/11 cases correctly (including "no tool
once the results are in"), against 8/11 with the instruction in the first system turn.
"""

import json
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import ToolCall
from langchain_core.messages.tool import tool_call

from aimesh.errors import ProviderError
from aimesh.llm.local_messages import ChatTurn

OpenAITool = dict[str, Any]

_REQUIRED_CHOICES = frozenset({"any", "required"})

DECISION_INSTRUCTION = (
    "Decide the next step. Reply with a JSON object "
    '{"tool_calls": [{"name": <tool name>, "arguments": {...}}, ...]}: one entry per tool '
    "call still needed (several entries for independent questions), or "
    '{"tool_calls": []} when no tool fits or the tool results above already answer the '
    "question."
)


def select_tools(
    tools: Sequence[OpenAITool], tool_choice: str | dict[str, Any] | bool | None
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


def _only(tools: Sequence[OpenAITool], name: str) -> list[OpenAITool]:
    chosen = [t for t in tools if t["function"]["name"] == name]
    if not chosen:
        raise ValueError(f"tool_choice {name!r} is not one of the bound tools")
    return chosen


def decision_schema(tools: Sequence[OpenAITool], required: bool) -> dict[str, Any]:
    """JSON schema of a decision over ``tools``.

    Args:
        tools: OpenAI-format tools; each contributes one ``anyOf`` branch.
        required: Whether at least one call must be made (``minItems: 1``).

    Returns:
        A schema for ``response_format={"type": "json_object", "schema": ...}``.
    """
    calls = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t["function"]["name"]},
                "arguments": t["function"].get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    array: dict[str, Any] = {"type": "array", "items": {"anyOf": calls}}
    if required:
        array["minItems"] = 1
    return {"type": "object", "properties": {"tool_calls": array}, "required": ["tool_calls"]}


def decision_turns(turns: Sequence[ChatTurn], tools: Sequence[OpenAITool]) -> list[ChatTurn]:
    """The conversation with the tool catalogue and the decision instruction added.

    Args:
        turns: Rendered conversation; a leading system turn is extended.
        tools: OpenAI-format tools to describe.

    Returns:
        ``[system + catalogue, *conversation, system instruction]``.
    """
    catalogue = _catalogue(tools)
    if turns and turns[0]["role"] == "system":
        head = {"role": "system", "content": f"{turns[0]['content']}\n\n{catalogue}"}
        body = list(turns[1:])
    else:
        head, body = {"role": "system", "content": catalogue}, list(turns)
    return [head, *body, {"role": "system", "content": DECISION_INSTRUCTION}]


def parse_decision(text: str) -> list[ToolCall]:
    """Map the model's decision JSON to LangChain tool calls.

    Args:
        text: The constrained model output.

    Returns:
        One ``ToolCall`` per entry, with ids ``call_<uuid hex>``; empty for "no tool".

    Raises:
        ProviderError: The output is not a complete decision (e.g. cut by max tokens).
    """
    try:
        entries = json.loads(text)["tool_calls"]
        return [
            tool_call(name=e["name"], args=dict(e["arguments"]), id=f"call_{uuid.uuid4().hex}")
            for e in entries
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(
            f"local model returned a malformed tool decision: {text[:200]!r}"
        ) from exc


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
