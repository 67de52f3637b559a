"""Train the models of new client-book versions in the background of a serving process.

An import stores a version whose models are ``pending``; :func:`training_books` wakes at
once when this process imported one (:meth:`BookTraining.wake`) and every
``book_training_poll_s`` seconds otherwise, so versions imported by the CLI or by another
process, and versions whose trainer died (claims older than ``book_training_stale_s``), are
trained too. One process claims a version (a conditional update; a claim past
``book_training_stale_s`` is taken over), and
trained in a thread, so the event loop keeps serving.

The job queue of the scale-out work replaces this loop; until then it is the "task runner"
of book training.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from aimesh.portfolio.books import Portfolios

logger = logging.getLogger(__name__)


class BookTraining:
    """The background trainer of one process.

    Args:
        portfolios: Whose pending versions to train.
        poll_s: Seconds between looks for versions imported elsewhere.
    """

    def __init__(self, portfolios: Portfolios, poll_s: float) -> None:
        self.portfolios = portfolios
        self.poll_s = poll_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for pending versions now (after an import)."""
        self._wake.set()

    async def run(self) -> None:
        """Train pending versions until cancelled; a failed round is logged and retried."""
        while True:
            try:
                for info in await self.portfolios.train_pending():
                    states = {m.model: m.status for m in info.models}
                    logger.info("book %s v%d trained: %s", info.tenant, info.version, states)
            except Exception:  # keep training; the next round may succeed
                logger.exception("book training round failed")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()


@asynccontextmanager
async def training_books(training: BookTraining) -> AsyncIterator[None]:
    """Run ``training`` while the block runs; cancel it on exit."""
    job = asyncio.create_task(training.run())
    try:
        yield
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
