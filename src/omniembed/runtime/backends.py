"""Pick how the transformer network runs: eager torch or ONNX Runtime, at a chosen precision."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from omniembed.modules import Features, Transformer
from omniembed.runtime.int8 import int8_available, quantize_linear_layers

logger = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnx", "openvino"]
DType = Literal["float32", "bfloat16", "int8"]
BACKENDS: tuple[str, ...] = get_args(Backend)
DTYPES: tuple[str, ...] = get_args(DType)
Network = Callable[[Features], Features]


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run the network.

    Attributes:
        backend: ``"torch"``, ``"onnx"``, ``"openvino"``, or ``"auto"`` (torch, or ONNX Runtime
            for ``int8`` where this torch build has no oneDNN int8 linear layer).
        dtype: ``"float32"`` (exact), ``"bfloat16"`` (torch or OpenVINO) or ``"int8"`` (CPU only).
        num_threads: CPU threads per forward pass; ``None`` lets the runtime use every core.
        cache_folder: where exported ONNX files are kept (see ``runtime.cache.cache_root``).
        calibration_texts: with ``int8``, quantize statically in OpenVINO with activation scales
            fitted on these texts (see ``runtime.static_int8``); ``None`` keeps int8 dynamic.
    """

    backend: Backend = "auto"
    dtype: DType = "float32"
    num_threads: int | None = None
    cache_folder: str | os.PathLike[str] | None = None
    calibration_texts: tuple[str, ...] | None = None

    def resolved_backend(self) -> str:
        """The backend ``"auto"`` stands for with this dtype."""
        if self.backend != "auto":
            return self.backend
        if self.calibration_texts is not None:
            return "openvino"
        return "onnx" if self.dtype == "int8" and not int8_available() else "torch"


def check_runtime(options: RuntimeOptions, device: torch.device) -> None:
    """Raise ``ValueError`` for a backend, dtype or device that do not go together."""
    if options.backend not in BACKENDS:
        raise ValueError(f"backend {options.backend!r} is not supported; use one of {BACKENDS}")
    if options.dtype not in DTYPES:
        raise ValueError(f"dtype {options.dtype!r} is not supported; use one of {DTYPES}")
    backend = options.resolved_backend()
    if options.dtype == "int8" and device.type != "cpu":
        raise ValueError(f"dtype='int8' runs on the CPU, got device {str(device)!r}; use dtype='bfloat16'")
    if backend == "torch" and options.dtype == "int8" and not int8_available():
        raise ValueError(
            "this torch build has no oneDNN int8 linear layer: use backend='onnx' for dtype='int8'"
        )
    if backend == "onnx" and options.dtype == "bfloat16":
        raise ValueError(
            "dtype='bfloat16' runs in torch or OpenVINO: use backend='torch' or 'openvino', or leave "
            "backend='auto'"
        )
    if options.calibration_texts is not None and options.dtype != "int8":
        raise ValueError(
            f"calibration_texts= fits the scales of static int8; give dtype='int8', not {options.dtype!r}"
        )
    if options.calibration_texts is not None and backend != "openvino":
        raise ValueError(
            f"static int8 (calibration_texts=) runs in OpenVINO, not backend={backend!r}: use "
            "backend='auto' or 'openvino'"
        )
    if backend == "openvino" and options.dtype == "int8" and options.calibration_texts is None:
        raise ValueError(
            "dtype='int8' in OpenVINO is static: give calibration_texts=[...] (texts like those you will "
            "encode), or use backend='auto' for dynamic int8"
        )
    if backend in ("onnx", "openvino") and device.type != "cpu":
        raise ValueError(
            f"backend={backend!r} runs on the CPU, got device {str(device)!r}; use backend='torch'"
        )
    if options.dtype == "bfloat16" and device.type == "cpu" and not cpu_has_bf16():
        logger.warning("this CPU has no native bfloat16 (avx512_bf16/amx); dtype='bfloat16' may be slow")


def prepare_network(
    transformer: Transformer, options: RuntimeOptions, release_weights: bool = False
) -> Network | None:
    """Return a replacement for ``transformer``'s forward pass, or ``None`` to run it in torch.

    ``bfloat16`` in torch is applied by the caller (it casts the whole model); ``int8`` in torch
    swaps the network's linear layers for int8 ones here. ONNX Runtime and OpenVINO run the network
    exported once into the cache (the ``onnx`` extra; OpenVINO also needs the ``openvino`` extra),
    OpenVINO statically quantized when ``calibration_texts`` are given;
    with ``release_weights``, the transformer's own weights are freed before the runtime loads its
    copy (see ``Transformer.release_weights``), so the two are never in memory together.
    """
    backend = options.resolved_backend()
    if backend == "torch":
        if options.dtype == "int8":
            quantize_linear_layers(transformer.auto_model)
        return None
    from omniembed.runtime.onnx import OnnxNetwork, cached_model
    from omniembed.runtime.onnx_attention import rewrite_applies
    from omniembed.runtime.openvino import OpenVinoNetwork, import_openvino
    from omniembed.runtime.static_int8 import import_nncf, static_int8_model

    export_dtype = options.dtype
    if backend == "openvino":
        import_openvino()  # name the missing extra before exporting
        if options.calibration_texts is not None:
            import_nncf()
        export_dtype = "float32"  # OpenVINO compiles (or calibrates) the float32 export
    texts = options.calibration_texts
    path = cached_model(transformer, export_dtype, options.cache_folder, lighter_attention=texts is None)
    if texts is not None:
        path = static_int8_model(transformer, path, texts)
    lighten_long_inputs = texts is not None and rewrite_applies(transformer)
    if release_weights:
        transformer.release_weights()
    if backend == "openvino":
        return OpenVinoNetwork(path, options.dtype, options.num_threads, lighten_long_inputs)
    return OnnxNetwork(path, options.num_threads)


def cpu_has_bf16() -> bool:
    """Whether the CPU computes in bfloat16 natively (x86 ``avx512_bf16`` or AMX)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags
