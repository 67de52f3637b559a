"""Render LangChain messages as plain chat messages for the local model.

Tool traffic is rendered as text so it works with any GGUF chat template: each tool
result becomes a user turn naming its tool (``Result of ask_churn_analyst:``), and an
assistant turn that only called tools is left out. On Qwen2.5-Coder-1.5B, showing the
calls as assistant turns made final answers imitate them (JSON or "I called: ..."
text), and repeating the call arguments next to results made answers cite the
results less often (3/5 against 5/5 answers with the key figures).
"""

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, ToolMessage

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
    tool_names: dict[str, str] = {}
    turns: list[ChatTurn] = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            tool_names.update({c["id"] or "": c["name"] for c in message.tool_calls})
            if message.text:
                turns.append({"role": "assistant", "content": message.text})
        elif isinstance(message, ToolMessage):
            turns.append({"role": "user", "content": _tool_result_text(message, tool_names)})
        elif isinstance(message, ChatMessage):
            turns.append({"role": message.role, "content": message.text})
        elif message.type in _ROLES:
            turns.append({"role": _ROLES[message.type], "content": message.text})
        else:
            raise ValueError(f"cannot render a {message.type!r} message for the local model")
    return turns


def _tool_result_text(message: ToolMessage, tool_names: dict[str, str]) -> str:
    name = message.name or tool_names.get(message.tool_call_id) or "a tool call"
    label = "Error from" if message.status == "error" else "Result of"
    return f"{label} {name}:\n{message.text}"
