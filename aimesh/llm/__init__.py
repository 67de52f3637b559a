"""LLM access for aimesh: the provider chain, the local model, model catalog and selection.

Modules: ``chain`` (``ProviderChain``, the chat model everything calls), ``attempt``
(``ModelAttempt``, the typed record of one model call attempt the chain builds),
``providers`` (building Claude/GPT/Gemini/local from the settings), ``classify`` (which
errors mean "try the next provider"), ``breaker`` (circuit breakers per link), ``route``
(the links a run may use), ``catalog`` and ``selection`` (models' capabilities and prices;
choosing a route), ``cost`` (the USD price of one model call, via genai-prices: used by the
chain, the catalog and the billing's worst case), ``usage`` (per-run token and cost totals
of the chain's answers), ``gguf`` (the packaged GGUF file), ``local`` (llama-cpp chat
model) with ``local_messages`` and ``tool_decision`` (tool calling by constrained JSON).
Money kept for tenants (ledger, budgets) is :mod:`aimesh.billing`'s.
"""
