"""Fine-tune all-MiniLM-L6-v2 on STS-B train, omniembed and the reference side by side.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/train_stsb.py [--loss cosent|matryoshka|mnrl] [--seeds 12,13,14]
        [--epochs 4] [--max-steps N]

``--loss cosent`` (default) is the reference library's documented STS-B recipe: batch 16, learning
rate 2e-5, 10% warm-up, scores divided by 5, CoSENTLoss; it reports STS-B dev Spearman (cosine)
before and after training. ``--loss matryoshka`` trains ``MatryoshkaLoss(CoSENTLoss)`` over
384/256/128/64 dimensions and reports the Spearman at each dimension (the untrained model truncated
the same way is the "before"). ``--loss mnrl`` trains MultipleNegativesRankingLoss on the STS-B
train pairs scored 4 or more as (anchor, positive), with the no-duplicates sampler, and reports
Cranfield retrieval (nDCG@10, MRR@10, MAP@100) before and after. Every mode reports the training
throughput in pairs per second (the pairs seen divided by the wall time of ``train()``) per seed
and library. ``--max-steps`` and ``--dev-rows`` cut the run short (a smoke test). The output is
markdown, ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import load_cranfield

from encode_speed import model_folder

STS_DIR = Path(__file__).resolve().parents[1] / "data" / "stsbenchmark"
DIMS = (384, 256, 128, 64)


def read_sts(name: str, limit: int | None = None) -> dict[str, list[Any]]:
    """The first ``limit`` rows of ``sts-<name>.csv`` as columns sentence1, sentence2 and score (0 to 1)."""
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "score": []}
    with (STS_DIR / f"sts-{name}.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            columns["sentence1"].append(row[5])
            columns["sentence2"].append(row[6])
            columns["score"].append(float(row[4]) / 5)
    return {name: values[:limit] for name, values in columns.items()}


def library_parts(library: str) -> tuple[Any, Any, Any, Any, Any]:
    """Model class, trainer, training arguments, evaluators module and losses module of a library."""
    if library == "ref":
        from sentence_transformers import SentenceTransformer as Model
        from sentence_transformers import SentenceTransformerTrainer as Trainer
        from sentence_transformers import SentenceTransformerTrainingArguments as Arguments
        from sentence_transformers.sentence_transformer import evaluation, losses
    else:
        from omniembed import SentenceTransformer as Model  # type: ignore[assignment]
        from omniembed.training import (
            Trainer,  # type: ignore[assignment]
            losses,  # type: ignore[no-redef]
        )
        from omniembed.training import TrainingArguments as Arguments  # type: ignore[assignment]
        from omniembed.training import evaluators as evaluation  # type: ignore[no-redef]
    return Model, Trainer, Arguments, evaluation, losses


def task(
    loss_name: str, model: Any, evaluation: Any, losses: Any, dev_rows: int | None
) -> tuple[dict[str, list[Any]], Any, Any]:
    """The training columns, the loss and a function measuring the model, for one ``--loss``."""
    dev = read_sts("dev", dev_rows)
    if loss_name == "mnrl":
        sts = read_sts("train")
        keep = [i for i, score in enumerate(sts["score"]) if score >= 0.8]
        train = {
            "anchor": [sts["sentence1"][i] for i in keep],
            "positive": [sts["sentence2"][i] for i in keep],
        }
        corpus, queries, qrels = load_cranfield()
        queries = dict(list(queries.items())[:dev_rows])
        documents = {doc: f"{text['title']} {text['body']}".strip() for doc, text in corpus.items()}
        relevant = {query: set(docs) for query, docs in qrels.items()}
        evaluator = evaluation.InformationRetrievalEvaluator(queries, documents, relevant, batch_size=64)

        def measure(model: Any) -> dict[str, float]:
            found = evaluator(model)
            return {key: found[f"cosine_{key}"] for key in ("ndcg@10", "mrr@10", "map@100")}

        return train, losses.MultipleNegativesRankingLoss(model), measure
    train = read_sts("train")
    if loss_name == "matryoshka":
        evaluators = {
            dim: evaluation.EmbeddingSimilarityEvaluator(
                dev["sentence1"], dev["sentence2"], dev["score"], truncate_dim=dim
            )
            for dim in DIMS
        }
        loss = losses.MatryoshkaLoss(model, losses.CoSENTLoss(model), list(DIMS))
        return (
            train,
            loss,
            lambda m: {f"spearman@{dim}": e(m)["spearman_cosine"] for dim, e in evaluators.items()},
        )
    evaluator = evaluation.EmbeddingSimilarityEvaluator(dev["sentence1"], dev["sentence2"], dev["score"])
    return train, losses.CoSENTLoss(model), lambda m: {"spearman": evaluator(m)["spearman_cosine"]}


def run(library: str, folder: Path, seed: int, options: argparse.Namespace, out: str) -> dict[str, Any]:
    """Train one model; return its numbers before and after and the pairs per second."""
    from datasets import Dataset

    model_class, trainer_class, arguments_class, evaluation, losses = library_parts(library)
    model = model_class(str(folder))
    train, loss, measure = task(options.loss, model, evaluation, losses, options.dev_rows)
    settings: dict[str, Any] = {
        "output_dir": out,
        "num_train_epochs": options.epochs,
        "max_steps": options.max_steps,
        "per_device_train_batch_size": options.batch_size,
        "learning_rate": options.lr,
        "warmup_steps": 0.1,
        "seed": seed,
        "save_strategy": "no",
        "logging_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
    }
    if options.loss == "mnrl":
        settings["batch_sampler"] = "no_duplicates"
    before = measure(model)
    trainer = trainer_class(
        model=model, args=arguments_class(**settings), train_dataset=Dataset.from_dict(train), loss=loss
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    pairs = trainer.state.global_step * options.batch_size
    return {
        "before": before,
        "after": measure(model),
        "pairs_per_s": pairs / seconds,
        "steps": trainer.state.global_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--loss", choices=("cosent", "matryoshka", "mnrl"), default="cosent")
    parser.add_argument("--libraries", default="ref,ours")
    parser.add_argument("--seeds", default="12,13,14")
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument(
        "--dev-rows", type=int, default=None, help="evaluate on this many dev rows or queries"
    )
    options = parser.parse_args()
    folder = model_folder(options.model)
    results: dict[str, list[dict[str, Any]]] = {}
    for seed in (int(s) for s in options.seeds.split(",")):
        for library in options.libraries.split(","):
            with tempfile.TemporaryDirectory() as out:
                result = run(library, folder, seed, options, out)
            results.setdefault(library, []).append(result)
            print(f"{library} seed {seed}: {result}", file=sys.stderr)
    print(f"Loss: {options.loss}; mean over seeds {options.seeds} (per seed in brackets)\n")
    print("| library | metric | before | after | pairs/s (median) | steps |")
    print("|---|---|---|---|---|---|")
    for library, runs in results.items():
        speed = statistics.median(r["pairs_per_s"] for r in runs)
        for metric in runs[0]["after"]:
            afters = [r["after"][metric] for r in runs]
            per_seed = ", ".join(f"{a:.4f}" for a in afters)
            print(
                f"| {library} | {metric} | {runs[0]['before'][metric]:.4f} | {statistics.mean(afters):.4f} "
                f"({per_seed}) | {speed:.1f} | {int(runs[0]['steps'])} |"
            )


if __name__ == "__main__":
    main()
