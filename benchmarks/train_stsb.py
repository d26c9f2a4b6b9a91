"""Fine-tune all-MiniLM-L6-v2 on STS-B train with CoSENTLoss, omniembed and the reference side by side.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/train_stsb.py [--seeds 12,13,14] [--epochs 4] [--max-steps N]

The recipe is the reference library's documented STS-B one: batch 16, learning rate 2e-5, 10%
warm-up, scores divided by 5, CoSENTLoss. For each seed and library it reports STS-B dev Spearman
(cosine) before and after training and the training throughput in pairs per second (the pairs
seen divided by the wall time of ``train()``). ``--max-steps`` cuts the run short (a smoke test).
The output is markdown, ready to paste into BENCHMARKS.md.
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

from encode_speed import model_folder

STS_DIR = Path(__file__).resolve().parents[1] / "data" / "stsbenchmark"


def read_sts(name: str) -> dict[str, list[Any]]:
    """The ``sts-<name>.csv`` split as columns sentence1, sentence2 and score (0 to 1)."""
    columns: dict[str, list[Any]] = {"sentence1": [], "sentence2": [], "score": []}
    with (STS_DIR / f"sts-{name}.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            columns["sentence1"].append(row[5])
            columns["sentence2"].append(row[6])
            columns["score"].append(float(row[4]) / 5)
    return columns


def run(library: str, folder: Path, seed: int, options: argparse.Namespace, out: str) -> dict[str, float]:
    """Train one model; return dev Spearman before and after and the pairs per second."""
    from datasets import Dataset

    train, dev = read_sts("train"), read_sts("dev")
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
    model = Model(str(folder))
    evaluator = evaluation.EmbeddingSimilarityEvaluator(dev["sentence1"], dev["sentence2"], dev["score"])
    before = evaluator(model)["spearman_cosine"]
    trainer = Trainer(
        model=model,
        args=Arguments(**settings),
        train_dataset=Dataset.from_dict(train),
        loss=losses.CoSENTLoss(model),
    )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    pairs = trainer.state.global_step * options.batch_size
    after = evaluator(model)["spearman_cosine"]
    return {
        "before": before,
        "after": after,
        "pairs_per_s": pairs / seconds,
        "steps": trainer.state.global_step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--libraries", default="ref,ours")
    parser.add_argument("--seeds", default="12,13,14")
    parser.add_argument("--epochs", type=float, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--max-steps", type=int, default=-1)
    options = parser.parse_args()
    folder = model_folder(options.model)
    results: dict[str, list[dict[str, float]]] = {}
    for seed in (int(s) for s in options.seeds.split(",")):
        for library in options.libraries.split(","):
            with tempfile.TemporaryDirectory() as out:
                result = run(library, folder, seed, options, out)
            results.setdefault(library, []).append(result)
            print(f"{library} seed {seed}: {result}", file=sys.stderr)
    print("| library | dev Spearman before | after (mean over seeds) | per seed | pairs/s (median) | steps |")
    print("|---|---|---|---|---|---|")
    for library, runs in results.items():
        afters = [r["after"] for r in runs]
        speed = statistics.median(r["pairs_per_s"] for r in runs)
        per_seed = ", ".join(f"{a:.4f}" for a in afters)
        print(
            f"| {library} | {runs[0]['before']:.4f} | {statistics.mean(afters):.4f} | {per_seed} | "
            f"{speed:.1f} | {int(runs[0]['steps'])} |"
        )


if __name__ == "__main__":
    main()
