"""A network's agents: the default set, and the specialists its agent records describe."""

from collections.abc import Sequence
from typing import Any

from aimesh.agents.registry import SPECIALISTS
from aimesh.agents.specialist import Specialist
from aimesh.errors import InvalidInputError
from aimesh.store.tables import Agent
from aimesh.tools.registry import TOOLS

COORDINATOR_DESCRIPTION = (
    "Coordinator: breaks a request down, delegates to the specialists and writes the answer "
    "from their results."
)


def default_agents() -> list[dict[str, Any]]:
    """Agent records of a network created without agents: coordinator + default specialists."""
    rows = [
        {
            "name": "coordinator",
            "description": COORDINATOR_DESCRIPTION,
            "tools": [f"ask_{s.name}" for s in SPECIALISTS],
        }
    ]
    rows += [
        {"name": s.name, "description": s.description, "tools": [t.name for t in s.tools]}
        for s in SPECIALISTS
    ]
    return [{"kind": "builtin", "prompt": None, **row} for row in rows]


def check_tools(tools: Sequence[str]) -> list[str]:
    """The tool names, each checked against the registered tools.

    Raises:
        InvalidInputError: An unknown tool (field ``tools``), naming the registered ones.
    """
    unknown = sorted(set(tools) - TOOLS.keys())
    if unknown:
        raise InvalidInputError("tools", f"unknown tools {unknown}", ", ".join(sorted(TOOLS)))
    return list(dict.fromkeys(tools))


def specialists(agents: Sequence[Agent]) -> list[Specialist]:
    """The coordinator's specialists for a network's agent records (coordinator excluded)."""
    builtin = {s.name: s for s in SPECIALISTS}
    out = []
    for agent in agents:
        if agent.kind == "builtin":
            if agent.name in builtin:
                out.append(builtin[agent.name])
            continue
        settings = {
            "temperature": agent.temperature,
            "max_tokens": agent.max_tokens,
            "prefer": agent.model,
        }
        out.append(
            Specialist(
                name=agent.name,
                description=agent.description,
                tools=tuple(TOOLS[name] for name in agent.tools),
                instructions=agent.prompt,
                model_settings=tuple((k, v) for k, v in settings.items() if v is not None),
            )
        )
    return out
