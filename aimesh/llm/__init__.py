"""LLM access for aimesh: the provider chain, the local model, the cost ledger and budgets.

Modules: ``chain`` (``ProviderChain``, the chat model everything calls), ``providers``
(building Claude/GPT/Gemini/local from the settings), ``classify`` (which errors mean
"try the next provider"), ``breaker`` (circuit breakers per link), ``route`` (the links a
run may use), ``catalog`` and ``selection`` (models' capabilities and prices; choosing a
route), ``cost`` (USD prices via genai-prices), ``usage`` (per-run token and cost totals),
``ledger`` (one row per model call attempt; the statistics), ``budgets`` (reservations)
with ``budget_amounts``, ``budget_admin`` and ``run_bound`` (a run's worst case), ``gguf``
(the packaged GGUF file), ``local`` (llama-cpp chat model) with ``local_messages`` and
``tool_decision`` (tool calling by constrained JSON).
"""
