"""The plate detector's recipe: a centre heat map at stride 8 (CenterNet-style: focal loss on the heat, L1 on
the offset and log size at each centre), trained on patches of the train part's frames and backgrounds with
synthetic and real train-part plates pasted in; reported on the validation part's frames.

    scripts/train detector [--steps N] [--data DIR] [--run DIR] [--out models/] [--seed S] [--side-share 0]
                           [--name plate-detector]

The side-view detector: `--side-share 0.3 --name plate-detector-side`.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np

from training import nets
from training.loop import Run, SampleWorkers, recipe_parser, train
from training.publish import DETECTORS


def _worker(args) -> None:
    queue, data_dir, seed, batch, side_share = args
    from training import data, scenes

    real = data.load(Path(data_dir), "train") if data_dir else []
    frames = [s for s in real if s.name.endswith(".jpg")]
    crops = [s for s in real if not s.name.endswith(".jpg")]
    rng = random.Random(seed)
    np.random.seed(seed % (2**31))
    while True:
        xs, heats, regs, masks = [], [], [], []
        for _ in range(batch):
            patch, boxes = scenes.detector_patch(rng, frames, crops, side_share)
            heat, reg, mask = scenes.targets(boxes)
            xs.append(patch[..., ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0)
            heats.append(heat)
            regs.append(reg)
            masks.append(mask)
        queue.put((np.stack(xs), np.stack(heats), np.stack(regs), np.stack(masks)))


def evaluate(predict, params, val, min_score: float = 0.3) -> dict:
    """Of the validation frames' labelled plates: found as the best box, found among the boxes (IoU >= 0.4),
    and the boxes given per frame."""
    from edge_agent.recognise.crops import detector_input
    from edge_agent.recognise.detector import box_iou, decode

    if not val:
        return {}
    first = anywhere = boxes_total = 0
    for s in val:
        blob, scale = detector_input(s.image)
        out = np.asarray(predict(params, blob))[0]
        boxes = decode(out, scale, s.image.shape[:2], min_score, 8)
        boxes_total += len(boxes)
        hits = [box_iou(b.box, s.box) >= 0.4 for b in boxes]
        first += bool(hits and hits[0])
        anywhere += any(hits)
    return {"val_frames": len(val), "val_first": first, "val_found": anywhere,
            "val_boxes_per_frame": round(boxes_total / len(val), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = recipe_parser("detector", steps=5400, batch=16, lr=3e-3, every=600, seed=20261202)
    parser.add_argument("--side-share", type=float, default=0.0,
                        help="share of frames and pasted plates seen from the side (a side camera: narrower, sloped)")
    parser.add_argument("--name", choices=sorted(DETECTORS), default="plate-detector",
                        help="the model it writes: the detector, or the side-view detector beside it")
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp
    import optax

    from training import data

    val = data.load(Path(args.data), "validation", kinds=("endtoend",)) if args.data else []
    run = Run(Path(args.run), vars(args))
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(300, args.steps // 10 + 1), args.steps, args.lr * 0.02)
    optimiser = optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(schedule, weight_decay=1e-4))
    params = jax.tree_util.tree_map(jnp.asarray, nets.detector_params(args.seed))
    opt_state = optimiser.init(params)
    step, params, opt_state = run.resume(params, opt_state)

    def loss_fn(p, xs, heat, reg, mask):
        ops = nets.JaxOps(train=True)
        out = nets.detector_net(ops, p, xs)
        pred = jax.nn.sigmoid(out[:, 0]).clip(1e-4, 1 - 1e-4)
        pos = heat >= 1.0
        focal_pos = -((1 - pred) ** 2) * jnp.log(pred) * pos
        focal_neg = -((1 - heat) ** 4) * (pred ** 2) * jnp.log(1 - pred) * (~pos)
        n = jnp.maximum(1.0, pos.sum())
        heat_loss = (focal_pos.sum() + focal_neg.sum()) / n
        m = mask[:, None]
        offset = (jnp.abs(out[:, 1:3] - reg[:, 0:2]) * m).sum() / n
        size = (jnp.abs(out[:, 3:5] - reg[:, 2:4]) * m).sum() / n
        return heat_loss + offset + size, (nets.batch_stats(p, ops.updates), heat_loss, size)

    @jax.jit
    def train_step(p, o, xs, heat, reg, mask):
        (loss, (stats, hl, sl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, xs, heat, reg, mask)
        delta, o = optimiser.update(grads, o, p)
        return nets.with_running_stats(optax.apply_updates(p, delta), p, stats), o, loss, hl, sl

    @jax.jit
    def predict(p, xs):
        return nets.detector_net(nets.JaxOps(train=False), p, xs)

    worker_args = [(args.data, args.seed * 1000 + step + i, args.batch, args.side_share) for i in range(args.workers)]
    with SampleWorkers(_worker, worker_args) as batches:
        params, opt_state = train(run, step, args.steps, args.every, params, opt_state, train_step, batches,
                                  lambda p: evaluate(predict, p, val),
                                  lambda extras: f" heat {float(extras[0]):.3f} size {float(extras[1]):.3f}")
    figure = evaluate(predict, params, val)
    from training.publish import publish_detector

    publish_detector(params, Path(args.out), run, figure, vars(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
