"""ONNX Runtime sessions for the plate models: CPU on a Pi, CUDA or TensorRT on a Jetson."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.errors import ModelError

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

# The characters a US plate carries; the reader's column k (k >= 1) is PLATE_ALPHABET[k - 1], column 0 the CTC blank.
PLATE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class RuntimeOptions:
    """How ONNX Runtime runs the models (CPU on a Pi; CUDA or TensorRT on a Jetson)."""

    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int = 0  # 0 lets ONNX Runtime choose (one per core)
    inter_op_threads: int = 1
    memory_arena: bool = True
    spin_wait: bool = False  # let idle ONNX Runtime threads spin (only worth it with cores to spare)
    trt_cache_dir: Path | None = None  # where TensorRT keeps built engines (else each start builds them again)
    trt_fp16: bool = True  # TensorRT may run layers in half precision (Jetson GPUs are built for it)


def provider_list(options: RuntimeOptions, available: set[str]) -> list[tuple[str, dict[str, str]]]:
    """The configured providers that are available here, in order, each with its options."""
    chosen = []
    for name in options.providers:
        if name not in available:
            continue
        settings: dict[str, str] = {}
        if name == "TensorrtExecutionProvider":
            settings["trt_fp16_enable"] = "True" if options.trt_fp16 else "False"
            if options.trt_cache_dir is not None:
                # building engines takes minutes on a Jetson: keep them across restarts
                settings["trt_engine_cache_enable"] = "True"
                settings["trt_engine_cache_path"] = str(options.trt_cache_dir)
        chosen.append((name, settings))
    return chosen


def make_session(path: Path | bytes, options: RuntimeOptions) -> ort.InferenceSession:
    # imported here: the configuration takes RuntimeOptions' defaults, and a station needs no runtime
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = options.intra_op_threads
    so.inter_op_num_threads = options.inter_op_threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # The arena keeps the peak allocation of every input size: about 15% faster,
    # about 120 MB more resident; a 2 GB unit may turn it off.
    so.enable_cpu_mem_arena = options.memory_arena
    # Two sessions (detector, recogniser) each keep a thread pool; spinning
    # threads of the idle one steal the cores the busy one needs, which on a
    # 2-core unit costs a third of the frame time.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if options.spin_wait else "0")
    available = set(ort.get_available_providers())
    providers = provider_list(options, available)
    missing = [p for p in options.providers if p not in available]
    if providers and missing:
        # a Jetson whose GPU runtime is broken still reads plates, slowly; say so once per model
        log.warning("ONNX Runtime providers %s are not available here; running on %s", missing, [p for p, _ in providers])
    if not providers:
        raise ModelError(
            f"none of the configured ONNX Runtime providers {list(options.providers)} is available here "
            f"(available: {sorted(available)})"
        )
    try:
        if options.trt_cache_dir is not None and any(p == "TensorrtExecutionProvider" for p, _ in providers):
            Path(options.trt_cache_dir).mkdir(parents=True, exist_ok=True)
        return ort.InferenceSession(path if isinstance(path, bytes) else str(path), sess_options=so,
                                    providers=[p for p, _ in providers], provider_options=[o for _, o in providers])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        name = "the model (from memory)" if isinstance(path, bytes) else path
        raise ModelError(f"{name}: ONNX Runtime cannot load the model: {exc}") from None
