"""Client side of bench/provider_chain.py: LiteLLM's Router, run in LiteLLM's own venv.

The same call as bench/chain_client.py: primary anthropic/claude-sonnet-4-5, fallback
openai/gpt-4.1-mini, SDK retries off, cost tracking on (LiteLLM prices every response:
``response._hidden_params["response_cost"]``). Prints one JSON object on stdout.
"""

import asyncio
import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # offline: its packaged prices

from litellm import Router  # noqa: E402
from loopback import MAX_TOKENS, MESSAGES, client_args, raw_ms, timed  # noqa: E402


def router(anthropic_url: str, openai_url: str, timeout: float) -> Router:
    """Two deployments with a fallback; no retries, no cooldown (every call tries the primary)."""
    params = {"api_key": "fake", "max_retries": 0, "timeout": timeout, "stream_timeout": timeout}
    primary = {"model": "anthropic/claude-sonnet-4-5", "api_base": anthropic_url, **params}
    secondary = {"model": "openai/gpt-4.1-mini", "api_base": openai_url, **params}
    return Router(
        model_list=[
            {"model_name": "primary", "litellm_params": primary},
            {"model_name": "secondary", "litellm_params": secondary},
        ],
        fallbacks=[{"primary": ["secondary"]}],
        num_retries=0,
        allowed_fails=1_000_000,
        cooldown_time=0,
    )


async def main() -> None:
    """Time the raw baseline (with --raw), then the Router's calls."""
    args = client_args()
    baseline = await raw_ms(args)
    chain, costs = router(args.anthropic_url, args.openai_url, args.timeout), []

    async def call() -> None:
        response = await chain.acompletion(
            model="primary", messages=MESSAGES, max_tokens=MAX_TOKENS
        )
        costs.append(response._hidden_params.get("response_cost"))

    tool_ms = await timed(call, args.calls, args.warmup)
    print(json.dumps({"raw_ms": baseline, "tool_ms": tool_ms, "last_cost_usd": costs[-1]}))


if __name__ == "__main__":
    asyncio.run(main())
