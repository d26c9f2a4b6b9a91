"""Keyword search at scale with many-term queries: query p50 and exactness of the pruned top-k.

Opens a keyword index saved under ``--index`` (building it there first, from ``--texts``, a JSON list
of strings, one object per string in slot order, if none is saved), runs every query of ``--queries``
(a JSON list of strings) at limits 10 and 100, and checks each answer against ranking every object's
full score (:meth:`KeywordIndex.scores`): the same slots and the same float64 scores, to the bit.

    PYTHONPATH=src python benchmarks/keyword_prune.py --texts scale-1000000/texts.json \\
        --queries scale-1000000/query_texts.json --index /tmp/kw1m/kw
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from omniembed.store.engines.keyword import KeywordIndex


def opened(prefix: Path, texts: Path) -> KeywordIndex:
    """The index saved at ``prefix``, built from ``texts`` and saved there first if missing."""
    loaded = KeywordIndex.load(prefix, ["text"])
    if loaded is not None:
        return loaded[0]
    bodies = json.loads(texts.read_text())
    index = KeywordIndex(["text"])
    for start in range(0, len(bodies), 50_000):
        batch = bodies[start : start + 50_000]
        index.add_many(range(start, start + len(batch)), [{"text": body} for body in batch])
    index.save(prefix, {"seq": 0, "deleted": 0})
    return index


def reference(full: np.ndarray, limit: int) -> tuple[list[int], list[float]]:
    """Every object with a positive full score, best first, ties by slot."""
    slots = np.flatnonzero(full > 0)
    order = np.lexsort((slots, -full[slots]))[:limit]
    return slots[order].tolist(), full[slots[order]].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="prefix of the saved index")
    args = parser.parse_args()
    index = opened(args.index, args.texts)
    queries = json.loads(args.queries.read_text())
    boosts = {"text": 1.0}
    for query in queries[:5]:  # warm: page in the memory maps, build the length norms
        index.search(query, boosts, 10)
    for limit in (10, 100):
        wall, cpu = [], []
        for query in queries:
            start, start_cpu = time.perf_counter(), time.process_time()
            index.search(query, boosts, limit)
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(
            f"limit {limit}: p50 {statistics.median(wall) * 1000:.2f} ms "
            f"(CPU {statistics.median(cpu) * 1000:.2f} ms) over {len(queries)} queries"
        )
    differing = 0
    for query in queries:
        full = index.scores(query, boosts)
        for limit in (10, 100):
            slots, scores = index.search(query, boosts, limit)
            differing += (slots.tolist(), scores.tolist()) != reference(full, limit)
    print(f"exactness: {differing} of {2 * len(queries)} answers differ from ranking every full score")


if __name__ == "__main__":
    main()
