"""The API's speed: time to the first SSE event, and task submissions per second.

Run: .venv/bin/python bench/api_service.py [--requests N]

Starts the real app (``create_app``) with uvicorn in a separate process on 127.0.0.1, in a
fresh data directory (SQLite + embedded Redis), with a stand-in chat model that never
answers: a task's run starts (claim, ``started`` event) and then waits, so the figures
measure the service, not a model. Rate limiting stays on, with a limit high enough not to
trigger. The client is httpx in this process, on the same 2 cores.

- first event: POST /networks/{id}/tasks/stream until the ``started`` event arrives, vs. a
  hello-world GET route on the same server (each task is cancelled afterwards, so none waits
  in the queue for a worker).
- submissions: POST /networks/{id}/tasks (auth + validate + persist + enqueue, 202) with 1
  and 50 concurrent clients (1 task worker: submitted tasks stay queued).

Writes bench/results/api_service.json; targets: first event p50 <= 10 ms, submissions
>= 475/s.
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

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


def percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2),
    }


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


async def submissions(url: str, key: str, network: str, clients: int, total: int) -> dict:
    """Submit ``total`` tasks from ``clients`` concurrent clients; tasks per second."""
    body = {"task": "Which clients are likely to churn?", "priority": 1}
    per_client = total // clients
    latencies: list[float] = []

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}) as client:
            for _ in range(per_client):
                t0 = time.perf_counter()
                r = await client.post(f"{PREFIX}/networks/{network}/tasks", json=body)
                latencies.append(1000 * (time.perf_counter() - t0))
                assert r.status_code == 202, r.text

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    return {
        "clients": clients,
        "tasks": per_client * clients,
        "per_s": round(per_client * clients / elapsed, 1),
        "latency": percentiles(latencies),
    }


async def run(server: Server, job: Any) -> Any:
    await server.wait()
    key = server.key()
    async with httpx.AsyncClient(base_url=server.url, headers={"X-API-Key": key}) as client:
        network = (await client.post(f"{PREFIX}/networks", json={"name": "bench"})).json()["id"]
        return await job(client, key, network)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        server = Server(Path(home) / "first", 8901, task_workers=64)
        try:
            results["first_event"] = asyncio.run(
                run(server, lambda c, k, n: first_event(c, n, min(200, args.requests)))
            )
        finally:
            server.stop()
        server = Server(Path(home) / "submit", 8902, task_workers=1)
        try:
            results["submissions"] = [
                asyncio.run(
                    run(
                        server,
                        lambda c, k, n, m=clients: submissions(server.url, k, n, m, args.requests),
                    )
                )
                for clients in (1, 50)
            ]
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
            "command": "python bench/api_service.py --requests " + str(args.requests),
        }
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
