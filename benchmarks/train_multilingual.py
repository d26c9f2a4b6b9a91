"""Multilingual distillation of all-MiniLM-L6-v2 on STS-B's parallel sentences, measured per language.

Run from the repository root::

    HF_HUB_OFFLINE=1 python benchmarks/train_multilingual.py [--languages de,es,fr,it,nl,pl,pt]
        [--epochs 5] [--batch-size 64] [--lr 2e-5] [--max-pairs N] [--max-steps N]

The teacher is all-MiniLM-L6-v2 and the student starts as a copy of it. Training rows are the
STS-B train sentences (both sides of each pair) with each translation in data/stsb-multi-mt, the
label the teacher's embedding of the English sentence, under ``MSELoss``. Before and after, on the
dev split, per language: translation retrieval accuracy English to the language and back
(``TranslationEvaluator`` over the dev sentences), cross-lingual STS Spearman (English sentence 1
against translated sentence 2, cosine, gold scores), and the English STS-B dev Spearman (which
must stay within 1% of the teacher's). ``--max-pairs``, ``--max-steps`` and ``--dev-rows`` make a smoke run.
The output is markdown, ready to paste into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from encode_speed import model_folder

DATA = Path(__file__).resolve().parents[1] / "data" / "stsb-multi-mt"


def read_split(
    language: str, split: str, limit: int | None = None
) -> tuple[list[str], list[str], list[float]]:
    """Sentence 1, sentence 2 and score (0 to 1) of stsb-<language>-<split>.csv, in file order."""
    with (DATA / f"stsb-{language}-{split}.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[:limit]
    return [r[0] for r in rows], [r[1] for r in rows], [float(r[2]) / 5 for r in rows]


def measure(model: Any, languages: list[str], rows: int | None) -> dict[str, float]:
    """Every number of the report for one model, on the first ``rows`` dev rows."""
    from omniembed.training import evaluators

    en1, en2, scores = read_split("en", "dev", rows)
    found = {"en_sts": evaluators.EmbeddingSimilarityEvaluator(en1, en2, scores)(model)["spearman_cosine"]}
    english = list(dict.fromkeys(en1 + en2))
    for language in languages:
        xx1, xx2, _ = read_split(language, "dev", rows)
        pairs = dict(zip(en1 + en2, xx1 + xx2, strict=True))  # first translation of each English sentence
        translation = evaluators.TranslationEvaluator(english, [pairs[e] for e in english], batch_size=64)(
            model
        )
        found[f"{language}_en2xx"] = translation["src2trg_accuracy"]
        found[f"{language}_xx2en"] = translation["trg2src_accuracy"]
        sts = evaluators.EmbeddingSimilarityEvaluator(en1, xx2, scores)(model)
        found[f"{language}_sts"] = sts["spearman_cosine"]
    return found


def main() -> None:
    from omniembed import SentenceTransformer
    from omniembed.training import Trainer, TrainingArguments, losses
    from omniembed.training.distillation import parallel_sentences_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--languages", default="de,es,fr,it,nl,pl,pt")
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--max-pairs", type=int, default=None, help="STS-B train rows per language")
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument(
        "--dev-rows", type=int, default=None, help="STS-B dev rows to measure on (default: all)"
    )
    parser.add_argument("--seed", type=int, default=12)
    options = parser.parse_args()
    folder, languages = model_folder(options.model), options.languages.split(",")
    teacher, student = SentenceTransformer(str(folder)), SentenceTransformer(str(folder))
    en1, en2, _ = read_split("en", "train", options.max_pairs)
    translations = {}
    for language in languages:
        xx1, xx2, _ = read_split(language, "train", options.max_pairs)
        translations[language] = xx1 + xx2
    train = parallel_sentences_dataset(teacher, en1 + en2, translations)
    before = measure(teacher, languages, options.dev_rows)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=student,
            args=TrainingArguments(
                output_dir=out,
                num_train_epochs=options.epochs,
                max_steps=options.max_steps,
                per_device_train_batch_size=options.batch_size,
                learning_rate=options.lr,
                warmup_ratio=0.1,
                seed=options.seed,
                save_strategy="no",
                logging_strategy="no",
                report_to="none",
                disable_tqdm=True,
            ),
            train_dataset=train,
            loss=losses.MSELoss(student),
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    after = measure(student, languages, options.dev_rows)
    print(f"{len(train)} training rows, {trainer.state.global_step} steps, {seconds:.0f} s\n")
    print("| language | en→xx accuracy | xx→en accuracy | cross-lingual STS Spearman |")
    print("|---|---|---|---|")
    for language in languages:
        cells = [
            f"{before[f'{language}_{k}']:.4f} → {after[f'{language}_{k}']:.4f}"
            for k in ("en2xx", "xx2en", "sts")
        ]
        print(f"| {language} | {' | '.join(cells)} |")
    change = (after["en_sts"] - before["en_sts"]) / before["en_sts"] * 100
    print(
        f"\nEnglish STS-B dev Spearman: teacher {before['en_sts']:.4f}, "
        f"student {after['en_sts']:.4f} ({change:+.2f}%)"
    )


if __name__ == "__main__":
    main()
