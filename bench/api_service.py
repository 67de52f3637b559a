"""The API's speed: time to the first SSE event, and task submissions per second.

Run: .venv/bin/python bench/api_service.py [--requests N] [--seconds S] (needs wrk:
``apt-get install wrk``; ``make bench`` installs it)

Starts the real app (``create_app``) with uvicorn in a separate process on 127.0.0.1, in a
fresh data directory (SQLite + embedded Redis), with a stand-in chat model that never
answers: a task's run starts (claim, ``started`` event) and then waits, so the figures
measure the service, not a model. Rate limiting stays on, with a limit high enough not to
trigger. Clients run on the same 2 cores as the server.

- first event: httpx in this process POSTs /networks/{id}/tasks/stream and reads until the
  ``started`` event arrives, vs. a hello-world GET route on the same server (each task is
  cancelled afterwards, so none waits in the queue for a worker).
- submissions: wrk POSTs /networks/{id}/tasks (auth + validate + persist + enqueue, 202) on 1
  and on 50 keep-alive connections for S seconds each (1 task worker: submitted tasks stay
  queued); every 202 is checked against the tasks the server then lists.

Writes bench/results/api_service.json; targets: first event p50 <= 10 ms, submissions
>= 475/s.
"""

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from timing import percentiles  # bench/timing.py

RESULTS = Path(__file__).resolve().parent / "results" / "api_service.json"
PREFIX = "/api/mesh"
TARGETS = {"first_event_p50_ms": 10.0, "submissions_per_s": 475.0}


def serve(port: int) -> None:
    """The server process: the real app, a model that never answers, a hello-world route."""
    import uvicorn
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from aimesh.api.app import create_app

    class Waiting(FakeListChatModel):
        async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(3600)

        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

    app = create_app(model=Waiting(responses=["unused"]))

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Server:
    """``serve`` in a subprocess with its own data directory and settings."""

    def __init__(self, home: Path, port: int, task_workers: int) -> None:
        self.env = {
            **os.environ,
            "AIMESH_HOME": str(home),
            "AIMESH_TASK_WORKERS": str(task_workers),
            "AIMESH_RATE_LIMIT": "1000000/minute",
            "AIMESH_PROVIDERS": '["local"]',
        }
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port)], env=self.env
        )

    def key(self) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "aimesh.cli", "keys", "create", "--tenant", "bench"]
            + ["--role", "admin", "--json"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout)["api_key"]

    async def wait(self) -> None:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                try:
                    if (await client.get(self.url + "/hello")).status_code == 200:
                        return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


async def first_event(client: httpx.AsyncClient, network: str, n: int) -> dict[str, Any]:
    """Milliseconds to the ``started`` event, and to a hello-world response, n times each."""
    started_ms, hello_ms = [], []
    body = {"task": "Which clients are likely to churn?"}
    for _ in range(n):
        t0 = time.perf_counter()
        async with client.stream(
            "POST", f"{PREFIX}/networks/{network}/tasks/stream", json=body
        ) as r:
            async for line in r.aiter_lines():
                if line == "event: started":
                    started_ms.append(1000 * (time.perf_counter() - t0))
                if line.startswith("data:"):
                    task = json.loads(line[5:])["task_id"]
                    break
        # free the worker: the stand-in model never answers
        await client.post(f"{PREFIX}/networks/{network}/tasks/{task}/cancel")
        t0 = time.perf_counter()
        (await client.get("/hello")).raise_for_status()
        hello_ms.append(1000 * (time.perf_counter() - t0))
    return {"started_event": percentiles(started_ms), "hello_world": percentiles(hello_ms)}


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"task": "Which clients are likely to churn?", "priority": 1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "non_2xx": %%d, "socket_errors": %%d, '
    .. '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def submissions(url: str, key: str, network: str, clients: int, seconds: int) -> dict:
    """Tasks submitted per second by ``clients`` keep-alive connections of wrk for ``seconds``.

    wrk (C) drives the load: a Python client on the same 2 cores cannot (httpx topped out at
    ~130 submissions/s with 50 clients while the server had CPU to spare).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % key)
        script.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "-s", script.name]
            + [f"{url}{PREFIX}/networks/{network}/tasks"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    stats = json.loads(out.strip().splitlines()[-1])
    if stats["non_2xx"] or stats["socket_errors"]:
        raise RuntimeError(f"wrk saw failed requests: {stats}")
    return {
        "clients": clients,
        "tasks": stats["requests"],
        "per_s": round(stats["requests"] / (stats["duration_us"] / 1e6), 1),
        "latency": {
            "n": stats["requests"],
            **{f"p{q}_ms": round(stats[f"p{q}_us"] / 1000, 2) for q in (50, 90, 99)},
        },
    }


async def stored_tasks(client: httpx.AsyncClient, network: str) -> int:
    """Tasks the server has stored for the network (checks wrk's count)."""
    r = await client.get(f"{PREFIX}/networks/{network}/tasks", params={"limit": 1})
    return int(r.raise_for_status().json()["total"])


async def run(server: Server, job: Any) -> Any:
    await server.wait()
    key = server.key()
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}) as client:
        network = (await client.post(f"{PREFIX}/networks", json={"name": "bench"})).json()["id"]
        return await job(client, key, network)


def measure_submissions(seconds: int) -> Any:
    """wrk at 1 and 50 connections; checks every accepted task was stored."""

    async def job(client: httpx.AsyncClient, key: str, network: str) -> list[dict]:
        rows = []
        for clients in (1, 50):
            before = await stored_tasks(client, network)
            row = await asyncio.to_thread(
                submissions, str(client.base_url).rstrip("/"), key, network, clients, seconds
            )
            row["stored"] = await stored_tasks(client, network) - before
            if row["stored"] < row["tasks"]:
                raise RuntimeError(f"{row['tasks']} tasks accepted, {row['stored']} stored")
            rows.append(row)
        return rows

    return job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=500, help="first-event samples")
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per client count")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        server = Server(Path(home) / "first", 8901, task_workers=64)
        try:
            results["first_event"] = asyncio.run(
                run(server, lambda c, k, n: first_event(c, n, args.requests))
            )
        finally:
            server.stop()
        server = Server(Path(home) / "submit", 8902, task_workers=1)
        try:
            results["submissions"] = asyncio.run(run(server, measure_submissions(args.seconds)))
        finally:
            server.stop()
    first = results["first_event"]
    print(f"{'measure':<34}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'per s':>9}")
    for name, row in (
        ("first SSE event (started)", first["started_event"]),
        ("hello-world route", first["hello_world"]),
    ):
        print(f"{name:<34}{row['p50_ms']:>9}{row['p90_ms']:>9}{row['p99_ms']:>9}{'':>9}")
    for row in results["submissions"]:
        lat = row["latency"]
        name = f"submit task, {row['clients']} client(s)"
        print(f"{name:<34}{lat['p50_ms']:>9}{lat['p90_ms']:>9}{lat['p99_ms']:>9}{row['per_s']:>9}")
    results.update(
        {
            "targets": TARGETS,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": f"python bench/api_service.py --requests {args.requests} "
            f"--seconds {args.seconds}",
        }
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
