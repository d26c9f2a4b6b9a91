"""Static int8 in OpenVINO: weights and activations quantized with scales fixed on calibration texts.

NNCF runs the float32 export on the calibration batches, records each activation's range and writes
an OpenVINO model whose matrix products, attention's included, take int8 inputs with those fixed
scales (dynamic int8 measures every activation on every call and keeps attention in float32). The
quantized model is cached beside the export, keyed by the calibration texts and the tool versions,
so a second load with the same texts reads it back instead of calibrating again.

Calibration texts should look like what will be encoded, lengths included: scales fitted on short
sentences clip the activations of long documents.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omniembed.errors import import_extra
from omniembed.modules import Transformer
from omniembed.runtime.openvino import CALIBRATED_TOKENS, import_openvino

logger = logging.getLogger(__name__)

CALIBRATION_BATCH = 8
"""Texts per calibration batch (batches of one length range keep padding out of the statistics)."""
MIN_CALIBRATION_TEXTS = 16
"""Fewer texts than this give scales that clip what they have not seen."""


def import_nncf() -> Any:
    """Import ``nncf``, or raise ``MissingExtraError`` naming the extra."""
    return import_extra(
        "nncf",
        "dtype='int8' with calibration_texts= needs NNCF and OpenVINO: pip install 'omniembed[openvino]'",
    )


def check_calibration_texts(texts: Sequence[str]) -> tuple[str, ...]:
    """The calibration texts as a tuple, or ``ValueError`` naming what is wrong with them."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(
            f"calibration_texts is a list of texts like those you will encode, got {type(texts).__name__}"
        )
    checked = tuple(texts)
    bad = next((i for i, text in enumerate(checked) if not isinstance(text, str) or not text.strip()), None)
    if bad is not None:
        raise ValueError(
            f"calibration_texts[{bad}] is {checked[bad]!r:.60}; every item must be a non-empty text"
        )
    if len(checked) < MIN_CALIBRATION_TEXTS:
        raise ValueError(
            f"calibration_texts has {len(checked)} texts; give at least {MIN_CALIBRATION_TEXTS} (a few "
            "hundred, of the lengths you will encode, calibrate well)"
        )
    return checked


def static_int8_model(transformer: Transformer, export: Path, texts: Sequence[str]) -> Path:
    """The statically quantized OpenVINO model (``.xml``) for ``export``, calibrated on ``texts``."""
    openvino, nncf = import_openvino(), import_nncf()
    digest = hashlib.sha256()
    for part in (openvino.__version__, nncf.__version__, str(CALIBRATION_BATCH), *texts):
        digest.update(part.encode("utf-8") + b"\0")
    target = export.parent / f"model.int8-static.{digest.hexdigest()[:16]}.xml"
    if target.is_file() and target.with_suffix(".bin").is_file():
        return target
    logger.info("calibrating static int8 on %d texts (once; later loads reuse %s)", len(texts), target)
    core = openvino.Core()
    model = core.read_model(str(export))
    names = [port.get_any_name() for port in model.inputs]
    ordered = sorted(texts, key=len)  # similar lengths per batch: little padding in the statistics
    batches, longest = [], 0
    for start in range(0, len(ordered), CALIBRATION_BATCH):
        features, _ = transformer.tokenize(list(ordered[start : start + CALIBRATION_BATCH]))
        batches.append({name: features[name].numpy() for name in names})
        longest = max(longest, int(features["attention_mask"].sum(dim=1).max()))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(batches),
        model_type=nncf.ModelType.TRANSFORMER,
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(batches),
    )
    quantized.set_rt_info(longest, CALIBRATED_TOKENS)  # read back by OpenVinoNetwork, to warn
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".int8-static-") as scratch:
        written = Path(scratch) / "model.xml"
        openvino.save_model(quantized, str(written), compress_to_fp16=False)
        os.replace(written.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(written, target)  # last: the .xml's presence means both files are whole
    return target
