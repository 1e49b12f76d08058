"""The plate text reader's recipe: the PP-OCR recogniser of the pinned rapidocr wheel (Apache-2.0; trained on
millions of lines of printed text), its 18710-character output cut to blank + 0-9 A-Z, fine-tuned with CTC
on the same samples as the plate reader (synthetic plates and the train part of the shared photographs,
`augment.sample_for_reader`), seen through `crops.text_reader_input`; reported on the validation part.

    scripts/train text [--steps N] [--data DIR] [--run DIR] [--out models/] [--seed S] [--seeds 2]
                      [--rearrange 0.3] [--real-warp 0]

What it has learned from text in general is what the 417 train crops cannot teach: the shapes of
characters in every font and light. It fine-tunes `--seeds` times (seeds S, S+1, ...: other samples in
another order, each run in RUN/seed-S) and averages the runs' weights, a "model soup": runs fine-tuned
from one pretrained model stay in one basin, and their average reads better than either at no cost a
plate. Each run checkpoints and resumes like the other recipes; the ONNX file (the same graph with the
averaged weights), its card and its manifest entry are written when every run has completed.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np

from edge_agent.recognise.crops import TEXT_READER_SIZE
from edge_agent.recognise.runtime import PLATE_ALPHABET
from training.loop import Run, SampleWorkers, check_out, leave_out_option, recipe_parser, train
from training.train_reader import MAX_LABEL, encode, greedy

BASE = "state-name-reader"  # the manifest's PP-OCR recogniser, the starting point


def base_model():
    """The pretrained recogniser's ONNX model with its output cut to blank + PLATE_ALPHABET logits."""
    import onnx
    from onnx import helper

    from edge_agent.recognise.models import load_manifest, verify_model
    from edge_agent.recognise.statename import character_list, cut_output_layer

    path = verify_model(load_manifest()[BASE])
    model = onnx.load(str(path))
    chars = character_list(model, path)
    add = cut_output_layer(model, [0] + [1 + chars.index(c) for c in PLATE_ALPHABET], path)
    graph = model.graph
    softmax = next(n for n in graph.node if n.op_type == "Softmax" and n.output[0] == graph.output[0].name)
    graph.node.remove(softmax)
    graph.output.pop()
    graph.output.append(helper.make_tensor_value_info(add.output[0], onnx.TensorProto.FLOAT,
                                                      ["N", "T", 1 + len(PLATE_ALPHABET)]))
    del model.metadata_props[:]
    for key, value in {"alphabet": PLATE_ALPHABET, "blank": "0", "base": path.name}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model


def _worker(args) -> None:
    queue, data_dir, seed, batch, synthetic_share, real_warp, rearrange, die_look, leave_out, streak = args
    from edge_agent.recognise.crops import text_reader_input
    from training import augment

    real, frames, centres = augment.reader_sources(data_dir, rearrange, leave_out)
    rng = random.Random(seed)
    np.random.seed(seed % (2**31))
    while True:
        xs = np.zeros((batch, 3, *TEXT_READER_SIZE), np.float32)
        labels = np.zeros((batch, MAX_LABEL), np.int32)
        pads = np.ones((batch, MAX_LABEL), np.float32)
        for i in range(batch):
            x, text, _ = augment.sample_for_reader(rng, real, frames, synthetic_share, real_warp=real_warp,
                                                   rearrange=rearrange, centres=centres, to_input=text_reader_input,
                                                   die_look=die_look, streak=streak)
            xs[i] = x
            code = encode(text)
            labels[i, :len(code)] = code
            pads[i, :len(code)] = 0.0
        queue.put((xs, labels, pads))


def validation_set(data_dir: str | None):
    from edge_agent.recognise.crops import text_reader_input
    from training import data

    if not data_dir:
        return None
    samples = data.load(Path(data_dir), "validation")
    return np.stack([text_reader_input(s.image, s.box) for s in samples]), [s.plate for s in samples]


def evaluate(predict, params, val) -> dict:
    if val is None:
        return {}
    xs, plates = val
    texts = []
    for i in range(0, len(xs), 64):
        texts += greedy(np.asarray(predict(params, xs[i:i + 64])))
    exact = sum(t == p for t, p in zip(texts, plates))
    return {"val_exact": exact, "val_n": len(plates), "val_exact_rate": round(exact / len(plates), 4)}


def average_weights(trees: list):
    """The element-wise mean of runs' parameter trees (the same structure and shapes)."""
    import jax

    return jax.tree_util.tree_map(lambda *leaves: sum(leaves) / len(leaves), *trees)


def main(argv: list[str] | None = None) -> int:
    from training import augment

    parser = recipe_parser("text", steps=1500, batch=32, lr=3e-4, every=100, seed=20261204)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--synthetic-share", type=float, default=0.3)
    parser.add_argument("--seeds", type=int, default=2, help="runs fine-tuned (seeds S, S+1, ...) and averaged")
    augment.reader_sample_options(parser, rearrange=0.3)
    leave_out_option(parser)
    args = parser.parse_args(argv)
    check_out(parser, args)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")

    import jax
    import jax.numpy as jnp
    import optax

    from training.onnx_jax import OnnxGraph

    if args.data:
        from training.data import check_folder

        check_folder(Path(args.data))
    model = base_model()
    graph = OnnxGraph(model)
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(200, args.steps // 10 + 1), args.steps, args.lr * 0.02)
    optimiser = optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(schedule, weight_decay=args.weight_decay))
    pretrained = jax.tree_util.tree_map(jnp.asarray, graph.params())

    def logits_of(p, xs):
        return graph(p, xs)[0]

    def loss_fn(p, xs, labels, pads):
        logits = logits_of(p, xs)
        ctc = optax.ctc_loss(logits, jnp.zeros(logits.shape[:2]), labels, pads, blank_id=0)
        return (ctc / jnp.maximum(1.0, (1 - pads).sum(-1))).mean()

    @jax.jit
    def train_step(p, o, xs, labels, pads):
        loss, grads = jax.value_and_grad(loss_fn)(p, xs, labels, pads)
        delta, o = optimiser.update(grads, o, p)
        return optax.apply_updates(p, delta), o, loss

    predict = jax.jit(logits_of)
    val = validation_set(args.data)
    if val is not None:
        print(f"before fine-tuning: validation {evaluate(predict, pretrained, val)}", flush=True)
    one_run = {k: v for k, v in vars(args).items() if k != "seeds"}
    runs, figures = [], {}
    for seed in range(args.seed, args.seed + args.seeds):
        print(f"run {len(runs) + 1} of {args.seeds}: seed {seed}", flush=True)
        run = Run(Path(args.run) / f"seed-{seed}", {**one_run, "seed": seed})
        step, params, opt_state = run.resume(pretrained, optimiser.init(pretrained))
        worker_args = [(args.data, seed * 1000 + step + i, args.batch, args.synthetic_share, args.real_warp,
                        args.rearrange, args.die_look, args.leave_out, args.streak) for i in range(args.workers)]
        with SampleWorkers(_worker, worker_args, maxsize=6) as batches:
            params, _ = train(run, step, args.steps, args.every, params, opt_state, train_step, batches,
                              lambda p: evaluate(predict, p, val))
        runs.append(params)
        figures.update({f"seed {seed} {k}": v for k, v in evaluate(predict, params, val).items() if k != "val_n"})
    params = average_weights(runs) if len(runs) > 1 else runs[0]
    figures.update(evaluate(predict, params, val))
    print(f"averaged weights of {len(runs)} runs: validation {figures}", flush=True)
    from training.publish import publish_text_reader

    publish_text_reader(model, graph, params, Path(args.out), run, figures, vars(args))
    return 0

if __name__ == "__main__":
    sys.exit(main())
