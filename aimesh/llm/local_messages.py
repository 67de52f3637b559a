"""Render LangChain messages as plain chat messages for the local model.

Tool traffic is rendered as text so it works with any GGUF chat template: an
assistant turn that called tools shows the same ``{"tool_calls": [...]}`` JSON the
model produces when deciding, and each tool result becomes a user turn naming the call
it answers (``Result of ask_churn_analyst({"request": ...}):``).
"""

import json
from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, ToolCall, ToolMessage

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}

ChatTurn = dict[str, str]


def to_chat_turns(messages: Sequence[BaseMessage]) -> list[ChatTurn]:
    """Convert a conversation to ``{"role", "content"}`` dicts for llama-cpp.

    Args:
        messages: System, human, AI (with or without tool calls), tool and chat messages.

    Returns:
        One dict per message, roles ``system``/``user``/``assistant``.

    Raises:
        ValueError: A message type that cannot be rendered.
    """
    calls: dict[str, str] = {}
    turns: list[ChatTurn] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            calls.update({c["id"] or "": _call_text(c) for c in message.tool_calls})
            turns.append({"role": "assistant", "content": _tool_calls_text(message)})
        elif isinstance(message, ToolMessage):
            turns.append({"role": "user", "content": _tool_result_text(message, calls)})
        elif isinstance(message, ChatMessage):
            turns.append({"role": message.role, "content": message.text})
        elif message.type in _ROLES:
            turns.append({"role": _ROLES[message.type], "content": message.text})
        else:
            raise ValueError(f"cannot render a {message.type!r} message for the local model")
    return turns


def _tool_calls_text(message: AIMessage) -> str:
    entries = [{"name": c["name"], "arguments": c["args"]} for c in message.tool_calls]
    decision = json.dumps({"tool_calls": entries}, ensure_ascii=False)
    return f"{message.text}\n{decision}" if message.text else decision


def _call_text(call: ToolCall) -> str:
    return f"{call['name']}({json.dumps(call['args'], ensure_ascii=False)})"


def _tool_result_text(message: ToolMessage, calls: dict[str, str]) -> str:
    call = calls.get(message.tool_call_id) or message.name or "a tool call"
    label = "Error from" if message.status == "error" else "Result of"
    return f"{label} {call}:\n{message.text}"
