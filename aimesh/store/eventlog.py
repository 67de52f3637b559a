"""The per-task event log in Redis Streams: ordered, shared by API processes, resumable.

Event ``n`` of a task is the stream entry ``n-1`` of key ``<prefix><task_id>`` with one field
``d`` holding the event's JSON. Reading after the exclusive id ``N-1`` gives exactly the events
after ``N`` (``Last-Event-ID``), whichever process serves the reader.
"""

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import redis.asyncio
from redis.exceptions import ResponseError

FIELD = b"d"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _payload(fields: dict[Any, Any]) -> str:
    """The event JSON of a stream entry (its field is bytes or, decoded, a string)."""
    return _text(fields[FIELD] if FIELD in fields else fields["d"])


def _event_id(entry_id: bytes | str) -> int:
    return int(_text(entry_id).partition("-")[0])


class EventLog:
    """Ordered, resumable event log per task in Redis Streams.

    Args:
        redis: Client to store the logs in (``bytes`` or ``str`` responses both work).
        prefix: Key prefix; a task's log is the stream ``f"{prefix}{task_id}"``.
        ttl_s: When set, every append resets the stream's expiry to this many seconds.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        *,
        prefix: str = "aimesh:events:",
        ttl_s: int | None = None,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_s = ttl_s

    def _key(self, task_id: str) -> str:
        return f"{self.prefix}{task_id}"

    async def append(self, task_id: str, event_id: int, payload: str) -> None:
        """Append event ``event_id`` (JSON ``payload``); with ``ttl_s``, reset the expiry too.

        The stream entry and the expiry are written in one MULTI/EXEC transaction.

        Raises:
            ValueError: ``event_id`` is below 1 or not greater than the last id of the log.
        """
        if event_id < 1:
            raise ValueError(f"event id {event_id} of task {task_id!r}: ids start at 1")
        key, fields = self._key(task_id), {FIELD: payload}
        try:
            if self.ttl_s is None:
                await self.redis.xadd(key, fields, id=f"{event_id}-1")  # type: ignore[arg-type]
            else:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.xadd(key, fields, id=f"{event_id}-1")  # type: ignore[arg-type]
                    pipe.expire(key, self.ttl_s)
                    await pipe.execute()
        except ResponseError as exc:
            if "equal or smaller" not in str(exc):
                raise
            last = await self.last_id(task_id)
            raise ValueError(
                f"event id {event_id} of task {task_id!r} is not greater than the last id {last}"
            ) from None

    async def read(
        self, task_id: str, after: int = 0, *, block_ms: int | None = None, count: int = 100
    ) -> list[tuple[int, str]]:
        """Up to ``count`` events with an id greater than ``after`` (0: all), oldest first.

        With ``block_ms`` (> 0) and no such event yet, waits up to that many milliseconds for
        one (XREAD BLOCK).

        Returns:
            ``(event_id, payload)`` pairs; ``[]`` when none came in time.
        """
        reply: Any = await self.redis.xread(
            {self._key(task_id): f"{after}-1"}, count=count, block=block_ms
        )
        if not reply:
            return []
        # RESP2: [[key, entries]]; unified: {key: entries}; RESP3: {key: [entries]}
        entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
        if entries and isinstance(entries[0], list):
            entries = entries[0]
        return [(_event_id(entry_id), _payload(fields)) for entry_id, fields in entries]

    async def follow(
        self,
        task_id: str,
        after: int = 0,
        *,
        heartbeat_s: float = 2.0,
        is_last: Callable[[str], bool],
    ) -> AsyncIterator[tuple[int, str] | None]:
        """Yield every event after ``after`` (0: all) as it comes, until the last one.

        Each read blocks in Redis (XREAD BLOCK) from the last id yielded, so nothing appended
        between reads is missed and an idle follower makes one request per heartbeat.

        Args:
            task_id: The task whose log to follow.
            after: Last event id already seen.
            heartbeat_s: Seconds without an event after which ``None`` is yielded; keep it
                below the client's socket timeout (redis-py 8 defaults to 5 s), since each
                wait is one blocking XREAD.
            is_last: True for the payload that ends the log; the generator stops after it.

        Yields:
            ``(event_id, payload)`` in order, or ``None`` as a heartbeat.
        """
        block_ms = max(1, round(heartbeat_s * 1000))
        while True:
            events = await self.read(task_id, after, block_ms=block_ms)
            if not events:
                yield None
            for event_id, payload in events:
                yield event_id, payload
                after = event_id
                if is_last(payload):
                    return

    async def newest(self, task_id: str) -> tuple[int, str] | None:
        """The task's newest event as ``(event_id, payload)``; None when its log is empty."""
        entries: Any = await self.redis.xrevrange(self._key(task_id), count=1)
        if not entries:
            return None
        entry_id, fields = entries[0]
        return _event_id(entry_id), _payload(fields)

    async def last_id(self, task_id: str) -> int:
        """Id of the task's newest event; 0 when its log is empty or absent."""
        newest = await self.newest(task_id)
        return newest[0] if newest else 0

    async def delete(self, task_ids: Sequence[str]) -> int:
        """Delete the logs of ``task_ids``; returns how many of them existed."""
        if not task_ids:
            return 0
        return int(await self.redis.delete(*(self._key(t) for t in task_ids)))
