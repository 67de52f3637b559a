"""The coordinator as a module-level ``graph`` for LangGraph's own tools (``langgraph.json``).

Building it is cheap: the provider chain resolves its providers, and the ML service loads its
models, on first use, not at import. LangGraph's server supplies the checkpointer.
"""

from aimesh.graphs.coordinator import build_coordinator
from aimesh.llm.chain import ProviderChain

graph = build_coordinator(ProviderChain())
