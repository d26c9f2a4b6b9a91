"""On a real two-node Ray cluster (separate processes, loopback only): a driver's job survives a
killed worker, and every input comes out exactly once, equal to in-process encoding."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from helpers.numbers import cosines
from helpers.ray_cluster import Cluster, loopback_cluster, ray_env

pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # two nodes and two drivers: about a minute

JOB_TIMEOUT_S = 150


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with loopback_cluster(nodes=2) as running:
        yield running


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str | None]:
    """The process's output lines as they come (``None`` at the end), read by a thread."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str | None], prefix: str, deadline: float, seen: list[str]) -> bool:
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            return False
        seen.append(line)
        if line.startswith(prefix):
            return True
    return False


def test_a_job_survives_a_killed_worker_and_embeds_every_input_once(
    cluster: Cluster,
    minilm_dir: Path,
    minilm_reference,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    out = tmp_path / "job.npz"
    command = [
        sys.executable,
        "-m",
        "helpers.ray_jobs",
        "embed",
        cluster.address,
        str(minilm_dir),
        "400",
        str(out),
    ]
    process = subprocess.Popen(
        command, env=ray_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[str] = []
    try:
        lines = _lines(process)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        assert _wait_for(lines, "batch 2", deadline, seen), "\n".join(seen[-40:])
        actors = cluster.actor_pids("Embedder")
        assert actors, "no embedding actor process found on the cluster"
        os.kill(actors[0], signal.SIGKILL)
        assert _wait_for(lines, "done", deadline, seen), "\n".join(seen[-40:])
        assert process.wait(timeout=max(1, deadline - time.monotonic())) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()
    assert actors[0] not in cluster.actor_pids("Embedder")
    result = np.load(out)
    ids, texts = result["ids"], [str(t) for t in result["texts"]]
    assert len(ids) == len(texts) == 400
    assert sorted(ids.tolist()) == list(range(400))  # every input exactly once
    assert set(result["nodes"].tolist()) == {"127.0.0.2", "127.0.0.3"}
    expected = minilm_reference.encode([texts[i] for i in ids], convert_to_numpy=True)
    assert cosines(result["embeddings"], expected).min() >= 0.99999


def test_the_command_line_runs_its_job_on_the_cluster(
    cluster: Cluster, tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    import omniembed as oe

    texts = [f"sentence number {i} about {word}" for i, word in enumerate(["cats", "rain", "stocks"] * 10)]
    source, out, model = tmp_path / "in.parquet", tmp_path / "out", str(tiny_model("bert"))
    pq.write_table(pa.table({"id": list(range(len(texts))), "text": texts}), source)
    command = [sys.executable, "-m", "omniembed.cli", "-q", "encode", model, str(source), "-o", str(out)]
    # One actor takes one node's CPU; reading and writing run on the other (two half-CPU actors, one
    # per node, would leave no node a whole CPU for them).
    command += ["--ray", cluster.address, "--concurrency", "1"]
    try:
        done = subprocess.run(command, env=ray_env(), capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired as late:
        raise AssertionError(str(late.stderr)[-4000:]) from None
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"embedded {len(texts)} rows into {out}" in done.stdout
    table = pq.read_table(out).sort_by("id")
    expected = oe.SentenceTransformer(model, device="cpu").encode(texts)
    assert cosines(np.array(table.column("embedding").to_pylist()), expected).min() >= 0.99999
