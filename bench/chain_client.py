"""Client side of bench/provider_chain.py: the aimesh provider chain, a ledger row per attempt.

The same call as bench/litellm_client.py: primary anthropic/claude-sonnet-4-5, fallback
openai/gpt-4.1-mini, SDK retries off, every attempt priced (genai-prices) and written to
the ledger (SQLite in a temporary data directory) before the call returns. Prints one JSON
object on stdout.
"""

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from loopback import MESSAGES, client_args, raw_ms, timed
from pydantic import SecretStr
from sqlalchemy import func, select

from aimesh.billing.ledger import Ledger, RunContext
from aimesh.config import Settings
from aimesh.events import MODEL_ATTEMPT
from aimesh.llm.chain import ProviderChain
from aimesh.store.database import Database
from aimesh.store.tables import LedgerEntry


class ToLedger(AsyncCallbackHandler):
    """Hands each ``model_attempt`` event to the ledger's group commit, as the task runner
    does: the call goes on while the row is committed; :meth:`flush` waits for them all."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.writes: list[asyncio.Task[None]] = []

    async def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record an attempt."""
        if name == MODEL_ATTEMPT:
            row = self.ledger.record(data, RunContext(tenant="bench"), agent="bench")
            self.writes.append(asyncio.create_task(row))

    async def flush(self) -> int:
        """Wait for every write; return how many rows were written."""
        await asyncio.gather(*self.writes)
        return len(self.writes)


def settings(home: Path, args: argparse.Namespace) -> Settings:
    """Anthropic then OpenAI at the fake server; breakers that never open, as LiteLLM's
    cooldown is off: every call tries the primary."""
    return Settings(
        home=home,
        providers=["anthropic", "openai"],
        anthropic_api_key=SecretStr("fake"),
        openai_api_key=SecretStr("fake"),
        anthropic_base_url=args.anthropic_url,
        openai_base_url=args.openai_url,
        anthropic_models=["claude-sonnet-4-5"],
        openai_models=["gpt-4.1-mini"],
        first_byte_timeout_s=args.timeout,
        max_output_tokens=50,
        breaker_failures=1_000_000,
    )


async def main() -> None:
    """Time the raw baseline (with --raw), then the chain's calls."""
    args = client_args()
    baseline = await raw_ms(args)
    with tempfile.TemporaryDirectory() as home:
        config = settings(Path(home), args)
        db = Database(config.database)
        await db.migrate()
        chain, handler, costs = ProviderChain(settings=config), ToLedger(Ledger(db.engine)), []

        async def call() -> None:
            answer = await chain.ainvoke(MESSAGES, config={"callbacks": [handler]})
            costs.append(answer.response_metadata["cost_usd"])

        tool_ms = await timed(call, args.calls, args.warmup)
        written = await handler.flush()
        async with db.engine.connect() as connection:
            stored = await connection.scalar(select(func.count()).select_from(LedgerEntry))
        await db.close()
    if stored != written or written < args.calls + args.warmup:
        raise RuntimeError(f"ledger: {written} attempts, {stored} rows stored")
    print(json.dumps({"raw_ms": baseline, "tool_ms": tool_ms, "last_cost_usd": costs[-1]}))


if __name__ == "__main__":
    asyncio.run(main())
