"""LLM access for aimesh: the provider chain and the local model.

Modules: ``chain`` (``ProviderChain``, the chat model everything calls), ``providers``
(building Claude/GPT/Gemini/local from the settings), ``classify`` (which errors mean
"try the next provider"), ``cost`` (USD prices via genai-prices), ``usage`` (per-run
token and cost totals), ``gguf`` (the packaged GGUF file), ``local`` (llama-cpp chat
model) with ``local_messages`` and ``tool_decision`` (tool calling by constrained JSON).
"""
