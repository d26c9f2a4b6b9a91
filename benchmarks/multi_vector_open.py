"""Opening a multi-vector collection: a saved, memory-mapped index against a rebuild from SQLite.

Run: ``.venv/bin/python benchmarks/multi_vector_open.py --count 5000`` (128-dim tokens, 32 a matrix).

Matrices are random normal (seed 0). The collection is written once; each figure comes from a fresh
child process: open time, the resident memory the open added (RSS after less RSS before, so Python
and numpy themselves do not count), whether opening imported torch, and the median of 50 unfiltered
``near_vector`` queries (limit 10) after one warm-up. ``rebuild`` deletes the saved index first;
``--compare-src`` opens the same folder with another checkout's ``src`` (say, before this index was
saved) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = """
import json, os, statistics, sys, time
import numpy as np
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
import omniembed as oe
before = rss()
start = time.perf_counter()
db = oe.connect(sys.argv[1])
docs = db.collections.get("Doc")
count = len(docs)
opened = time.perf_counter() - start
added = rss() - before
torch = "torch" in sys.modules
rng = np.random.default_rng(1)
queries = [rng.normal(size=(8, int(sys.argv[2]))).astype(np.float32) for _ in range(51)]
docs.query.near_vector(queries[0], limit=10)
times = []
for query in queries[1:]:
    start = time.perf_counter()
    docs.query.near_vector(query, limit=10)
    times.append(time.perf_counter() - start)
print(json.dumps({"count": count, "open_s": round(opened, 3), "open_rss_mb": round(added / 2**20, 1),
                  "torch_at_open": torch, "query_p50_ms": round(1000 * statistics.median(times), 2)}))
os._exit(0)  # no close: closing would save, which is not what is measured
"""


def build(folder: Path, count: int, dims: int, tokens: int) -> None:
    """Write ``count`` objects with random (tokens x dims) matrices, then close (which saves)."""
    import omniembed as oe

    rng = np.random.default_rng(0)
    with oe.connect(folder) as db:
        docs = db.collections.create("Doc", {"n": "int"}, {"m": oe.SelfProvided(dims, multi_vector=True)})
        for start in range(0, count, 1000):
            objects = [
                oe.DataObject({"n": n}, vectors={"m": rng.normal(size=(tokens, dims)).astype(np.float32)})
                for n in range(start, min(count, start + 1000))
            ]
            docs.data.insert_many(objects, show_progress=False)


def measure(folder: Path, dims: int, src: str | None = None) -> dict[str, object]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(dims)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--dims", type=int, default=128)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--compare-src", help="another checkout's src folder to open the same database with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "db"
        build(folder, args.count, args.dims, args.tokens)
        saved = sum(path.stat().st_size for path in folder.glob("1.m.*"))
        print(json.dumps({"saved_index_mb": round(saved / 2**20, 1)}))
        print("saved:", json.dumps(measure(folder, args.dims)))
        if args.compare_src:
            print("compare:", json.dumps(measure(folder, args.dims, args.compare_src)))
        for path in folder.glob("1.m.*"):
            path.unlink()
        print("rebuild:", json.dumps(measure(folder, args.dims)))
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
