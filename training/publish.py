"""Writes a trained model into models/: the ONNX file, its model card and its manifest entry, together.

The ONNX file is checked first (it loads in ONNX Runtime, has the shapes the agent expects, and gives
what JAX gave on the same input); only then are the three files written, each to a temporary name and
moved into place, so a failed or stopped run never leaves a half model in models/.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from training import nets

LICENCE_NOTE = """\
## Licences of the inputs, and what they mean for the weights

| input | licence | use |
|---|---|---|
| `../shared/data/us-plates` train part (photographs from the public OpenALPR benchmark collection) | AGPL-3.0 | training images |
| synthetic plates rendered by `training/render.py` | this repository | training images |
| fonts: DejaVu (Bitstream Vera licence), Liberation (SIL OFL 1.1), FreeFont (GPL-3.0 with font exception), Roboto (Apache-2.0), Open Sans (Apache-2.0/OFL) | as listed | glyphs drawn into synthetic training images; no font file is shipped |
| JAX, optax (Apache-2.0) | Apache-2.0 | training code only |

The weights are learned in part from AGPL-3.0 photographs. Whether trained weights are a derivative work
of their training images is unsettled; we take the careful view: the weights are distributed under terms
compatible with AGPL-3.0 (they are published with this repository's training code, which regenerates
them), and an agency that needs other terms retrains with `--data` pointing at its own photographs or
with synthetic plates alone (`scripts/train reader` without `--data`). The validation part was never
used for training, augmentation or backgrounds.
"""


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _flops(onnx_bytes: bytes, input_shape: tuple) -> int:
    """Multiply-accumulates of one input: convolutions and dense layers, from the exported graph."""
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load_from_string(onnx_bytes)
    graph = model.graph
    fixed = onnx.helper.make_tensor_value_info(graph.input[0].name, onnx.TensorProto.FLOAT, list(input_shape))
    graph.input.pop()
    graph.input.append(fixed)
    inferred = shape_inference.infer_shapes(model).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in list(inferred.value_info) + list(inferred.output)}
    weights = {i.name: numpy_helper.to_array(i).shape for i in graph.initializer}
    macs = 0
    for node in graph.node:
        if node.op_type == "Conv":
            cout, cin, kh, kw = weights[node.input[1]]
            out = shapes.get(node.output[0])
            if out:
                macs += int(np.prod(out[2:])) * cout * cin * kh * kw
        elif node.op_type == "Gemm":
            cin, cout = weights[node.input[1]]
            macs += cin * cout
    return macs


MANIFEST_HEADER = """\
# Model files the agent loads. Each is verified against its sha256 at start-up;
# a missing or altered file stops the agent with a message naming the file.
#
# origin "repository": trained by training/ (scripts/train) and committed here, beside this
# manifest, with a model card (NAME.md). origin "wheel": inside a pinned PyPI package, at `path`.
"""


def update_manifest(manifest: Path, entry: dict) -> None:
    """Replace (or add) the [[model]] block with `entry`'s name, keeping the others and the header."""
    from edge_agent.tomlcompat import tomllib

    text = manifest.read_text() if manifest.is_file() else MANIFEST_HEADER
    header = text.split("[[model]]")[0]
    models = tomllib.loads(text).get("model", [])
    models = [m for m in models if m.get("name") != entry["name"]] + [entry]
    blocks = []
    for m in models:
        lines = ["[[model]]"] + [f"{k} = {json.dumps(v)}" for k, v in m.items()]
        blocks.append("\n".join(lines))
    _atomic_write(manifest, (header.rstrip() + "\n\n" + "\n\n".join(blocks) + "\n").encode())


def publish(name: str, role: str, description: str, onnx_bytes: bytes, out: Path, card: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    card = card.replace("{sha256}", digest)
    _atomic_write(out / f"{name}.onnx", onnx_bytes)
    _atomic_write(out / f"{name}.md", card.encode())
    update_manifest(out / "manifest.toml", {
        "name": name, "role": role, "description": description, "package": "edge-agent", "origin": "repository",
        "version": "trained", "path": f"{name}.onnx", "sha256": digest, "license": "AGPL-3.0-compatible (see card)",
        "source": f"trained by training/ in this repository; card {name}.md"})
    return digest


def check_export(onnx_bytes: bytes, predict, params, sample: np.ndarray, expected: dict) -> None:
    """The file loads, its outputs have the shapes the agent expects and match JAX's on `sample`."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: sample})
    ours = predict(params, sample)
    ours = ours if isinstance(ours, tuple) else (ours,)
    for (name, shape), got, want in zip(expected.items(), outputs, ours):
        if list(got.shape[1:]) != list(shape[1:]):
            raise SystemExit(f"export check: output {name} has shape {got.shape}, the agent expects {shape}")
        if not np.allclose(got, np.asarray(want), atol=1e-3, rtol=1e-3):
            raise SystemExit(f"export check: output {name} differs from training's by {np.abs(got - np.asarray(want)).max()}")


def _seeds(config: dict) -> str:
    runs = config.get("seeds", 1)
    if runs == 1:
        return f"seed {config.get('seed')}"
    return f"{runs} runs (seeds {config.get('seed')} to {config.get('seed') + runs - 1}) with their weights averaged"


def card_text(title: str, summary: str, run, figures: dict, config: dict, macs: int, extra: str = "") -> str:
    log = run.log()
    lines = [f"# {title}", "", summary, "",
             f"- sha256: `{{sha256}}`",
             f"- trained: {datetime.date.today().isoformat()}, {len(log)} checkpoints, {config.get('steps')} steps, " + _seeds(config),
             f"- multiply-accumulates per input: {macs / 1e6:.1f} M",
             "- recipe: " + ", ".join(f"{k}={v}" for k, v in sorted(config.items()) if k not in ("run", "out")),
             "- data: synthetic plates (`training/render.py`) and the train part of the committed split "
             "(`edge_agent/bench/us_plates_split.csv`: 70/30 by a hash of the plate text)",
             "", "## Validation figures (the validation part of the split; never trained on)", ""]
    lines += [f"- {k}: {v}" for k, v in figures.items()]
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n\n" + LICENCE_NOTE


def publish_reader(params, out: Path, run, figures: dict, config: dict) -> str:
    import jax

    from edge_agent.recognise.crops import READER_CHANNELS, READER_SIZE

    shape = (1, READER_CHANNELS, *READER_SIZE)
    expected = {"chars": ["N", 32, nets.NUM_CHARS], "state": ["N", nets.NUM_STATES]}
    numpy_params = jax.tree_util.tree_map(np.asarray, params)
    onnx_bytes = nets.export_onnx(nets.reader_net, numpy_params, shape, "strip", expected,
                                  {"alphabet": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", "blank": "0",
                                   "states": ",".join(sorted(__import__("edge_agent.recognise.plate", fromlist=["US_STATES"]).US_STATES))})
    sample = np.random.default_rng(0).standard_normal((4, *shape[1:])).astype(np.float32)
    predict = jax.jit(lambda p, x: nets.reader_net(nets.JaxOps(train=False), p, x))
    check_export(onnx_bytes, predict, params, sample, expected)
    macs = _flops(onnx_bytes, shape)
    card = card_text("plate-reader", "Reads a plate box: CTC over 32 steps of a 48x128 colour strip (characters "
                     "0-9 A-Z with per-step probabilities) and the issuing state (51 classes).", run, figures, config, macs)
    digest = publish("plate-reader", "plate-reader", "our plate reader: CTC characters and issuing state of a plate box",
                     onnx_bytes, Path(out), card)
    print(f"wrote {out}/plate-reader.onnx sha256 {digest}", flush=True)
    return digest


# the detectors a recipe may write: each one's description in the manifest, and what its card says first
DETECTORS = {
    "plate-detector": ("our plate detector: plate boxes in a whole frame", ""),
    "plate-detector-side": ("our plate detector for plates seen steeply from the side, beside plate-detector",
                            "Beside plate-detector, for plates seen steeply from the side (a side camera's view of "
                            "parked cars). "),
}


def publish_detector(params, out: Path, run, figures: dict, config: dict) -> str:
    import jax

    from edge_agent.recognise.crops import DETECTOR_SIZE, DETECTOR_STRIDE

    shape = (1, 3, *DETECTOR_SIZE)
    expected = {"heat": ["N", nets.DETECTOR_OUTPUTS, DETECTOR_SIZE[0] // DETECTOR_STRIDE, DETECTOR_SIZE[1] // DETECTOR_STRIDE]}
    numpy_params = jax.tree_util.tree_map(np.asarray, params)
    onnx_bytes = nets.export_onnx(nets.detector_net, numpy_params, shape, "frame", expected,
                                  {"stride": str(DETECTOR_STRIDE), "outputs": "heat,dx,dy,log_w,log_h"})
    sample = np.random.default_rng(0).random((1, *shape[1:])).astype(np.float32)
    predict = jax.jit(lambda p, x: nets.detector_net(nets.JaxOps(train=False), p, x))
    check_export(onnx_bytes, predict, params, sample, expected)
    macs = _flops(onnx_bytes, shape)
    name = config.get("name", "plate-detector")
    description, lead = DETECTORS[name]
    card = card_text(name, f"{lead}Finds plates in a whole frame letterboxed into {DETECTOR_SIZE[1]}x{DETECTOR_SIZE[0]} "
                     f"RGB: a centre heat map and box size on a stride-{DETECTOR_STRIDE} grid.", run, figures, config, macs,
                     extra=f"On a Raspberry Pi 5 (4 Cortex-A76 cores, about 20-30 GMAC/s from ONNX Runtime's float32 "
                           f"convolutions) {macs / 1e9:.2f} GMAC a frame predicts about {macs / 25e9 * 1000:.0f} ms.")
    digest = publish(name, name, description, onnx_bytes, Path(out), card)
    print(f"wrote {out}/{name}.onnx sha256 {digest}", flush=True)
    return digest


TEXT_LICENCE_NOTE = """\
The starting weights are the PP-OCRv6 recogniser (small) as shipped in the rapidocr 3.10.0 wheel
(PaddleOCR, Apache-2.0); the fine-tuned weights keep its notice (Apache-2.0) beside the AGPL-3.0 view
below.
"""


def publish_text_reader(model, graph, params, out: Path, run, figures: dict, config: dict) -> str:
    """The fine-tuned PP-OCR recogniser: the same graph with the trained weights, checked against JAX."""
    import jax

    from edge_agent.recognise.crops import TEXT_READER_SIZE
    from training.onnx_jax import with_params

    numpy_params = jax.tree_util.tree_map(np.asarray, params)
    onnx_bytes = with_params(model, numpy_params).SerializeToString()
    shape = (1, 3, *TEXT_READER_SIZE)
    steps = TEXT_READER_SIZE[1] // 8
    expected = {"chars": ["N", steps, nets.NUM_CHARS]}
    sample = np.random.default_rng(0).uniform(-1, 1, (4, *shape[1:])).astype(np.float32)
    predict = jax.jit(lambda p, x: graph(p, x)[0])
    check_export(onnx_bytes, predict, params, sample, expected)
    macs = _flops(onnx_bytes, shape)
    card = card_text("plate-text-reader", f"Reads a plate box's characters: the PP-OCR text recogniser fine-tuned on "
                     f"plates, CTC over {steps} steps of a {TEXT_READER_SIZE[1]}x{TEXT_READER_SIZE[0]} BGR strip "
                     "(blank + 0-9 A-Z).", run, figures, config, macs,
                     extra=TEXT_LICENCE_NOTE + "\nMultiply-accumulates count convolutions only (the attention's "
                           "matrix products are not in the figure).")
    digest = publish("plate-text-reader", "plate-text-reader",
                     "PP-OCR recogniser fine-tuned on plates: CTC characters of a plate box", onnx_bytes, Path(out), card)
    print(f"wrote {out}/plate-text-reader.onnx sha256 {digest}", flush=True)
    return digest
