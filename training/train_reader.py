"""The plate reader's recipe: CTC over 32 steps of a 48x128 grey strip, and the issuing state, trained on
synthetic plates and the train part of the shared photographs; reported on the validation part.

    scripts/train reader [--steps N] [--data DIR] [--run DIR] [--out models/] [--seed S]

Checkpoints every --every steps into the run folder and resumes from the last one; the ONNX file, its
model card and manifest entry are written only when the run completes and its export checks out.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

import numpy as np

from edge_agent.recognise.crops import READER_CHANNELS, READER_SIZE
from edge_agent.recognise.runtime import PLATE_ALPHABET
from edge_agent.recognise.plate import US_STATES
from training import nets
from training.loop import Run, check_out, leave_out_option, progress, recipe_parser

STATES = tuple(sorted(US_STATES))
MAX_LABEL = 10


def encode(text: str) -> list[int]:
    return [1 + PLATE_ALPHABET.index(c) for c in text if c in PLATE_ALPHABET][:MAX_LABEL]


def _worker(args) -> None:
    queue, data_dir, seed, batch, synthetic_share, real_warp, warp_below, rearrange, die_look, leave_out, streak = args
    from training import augment

    real, frames, centres = augment.reader_sources(data_dir, rearrange, leave_out)
    rng = random.Random(seed)
    np.random.seed(seed % (2**31))
    while True:
        xs = np.zeros((batch, READER_CHANNELS, *READER_SIZE), np.float32)
        labels = np.zeros((batch, MAX_LABEL), np.int32)
        pads = np.ones((batch, MAX_LABEL), np.float32)
        states = np.full(batch, -1, np.int32)
        for i in range(batch):
            x, text, state = augment.sample_for_reader(rng, real, frames, synthetic_share, real_warp, warp_below,
                                                       rearrange, centres, die_look=die_look, streak=streak)
            xs[i] = x
            code = encode(text)
            labels[i, :len(code)] = code
            pads[i, :len(code)] = 0.0
            if state in STATES:
                states[i] = STATES.index(state)
        queue.put((xs, labels, pads, states))


def greedy(logits: np.ndarray) -> list[str]:
    best = logits.argmax(-1)
    out = []
    for row in best:
        chars, prev = [], 0
        for k in row:
            if k != prev and k != 0:
                chars.append(PLATE_ALPHABET[k - 1])
            prev = k
        out.append("".join(chars))
    return out


def validation_set(data_dir: str | None):
    """The validation part's plates through their labelled boxes (no jitter, no augmentation)."""
    from edge_agent.recognise.crops import reader_input
    from training import data

    if not data_dir:
        return None
    samples = data.load(Path(data_dir), "validation")
    xs = np.stack([reader_input(s.image, s.box) for s in samples])
    return xs, [s.plate for s in samples], [s.state for s in samples]


def main(argv: list[str] | None = None) -> int:
    from training import augment

    parser = recipe_parser("reader", steps=5000, batch=64, lr=2e-3, every=250, seed=20261202)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    # tried on 2026-12-03 with 0.2, 0.6 and weight decay 5e-4 (docs/reading.md): frames +4, state +2 points,
    # crops -8 of 188; the committed reader is the run without them
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout before the character and state heads")
    parser.add_argument("--state-dropout", type=float, default=None,
                        help="dropout before the state head alone (default: --dropout)")
    augment.reader_sample_options(parser, rearrange=0.0)
    parser.add_argument("--warp-below", type=float, default=None,
                        help="warp only real plates narrower than this many pixels in their photograph")
    parser.add_argument("--ema", type=float, default=0.0,
                        help="keep a running average of the weights with this decay (0.999: about the last 1000 "
                             "steps); it is validated beside the weights and is what gets exported")
    parser.add_argument("--synthetic-share", type=float, default=0.3)
    leave_out_option(parser)
    args = parser.parse_args(argv)
    check_out(parser, args)

    import jax
    import jax.numpy as jnp
    import optax

    if args.data:
        from training.data import check_folder

        check_folder(Path(args.data))
    run = Run(Path(args.run), vars(args))
    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(500, args.steps // 10 + 1), args.steps, args.lr * 0.02)
    optimiser = optax.chain(optax.clip_by_global_norm(5.0), optax.adamw(schedule, weight_decay=args.weight_decay))
    params = jax.tree_util.tree_map(jnp.asarray, nets.reader_params(args.seed))
    opt_state = optimiser.init(params)
    step, params, opt_state = run.resume(params, opt_state)
    averaged = (params if run.averaged is None else run.averaged) if args.ema else None

    def loss_fn(p, xs, labels, pads, states, key):
        ops = nets.JaxOps(train=True, key=key, dropout=args.dropout, state_dropout=args.state_dropout)
        logits, state_logits = nets.reader_net(ops, p, xs)
        ctc = optax.ctc_loss(logits, jnp.zeros(logits.shape[:2]), labels, pads, blank_id=0)
        ctc = ctc / jnp.maximum(1.0, (1 - pads).sum(-1))
        known = states >= 0
        ce = optax.softmax_cross_entropy_with_integer_labels(state_logits, jnp.maximum(states, 0))
        state_loss = (ce * known).sum() / jnp.maximum(1.0, known.sum())
        return ctc.mean() + 0.5 * state_loss, (nets.batch_stats(p, ops.updates), ctc.mean(), state_loss)

    @jax.jit
    def train_step(p, o, xs, labels, pads, states, key):
        (loss, (stats, ctc, sl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, xs, labels, pads, states, key)
        delta, o = optimiser.update(grads, o, p)
        return nets.with_running_stats(optax.apply_updates(p, delta), p, stats), o, loss, ctc, sl

    @jax.jit
    def predict(p, xs):
        return nets.reader_net(nets.JaxOps(train=False), p, xs)

    @jax.jit
    def average(a, p):
        return jax.tree_util.tree_map(lambda x, y: args.ema * x + (1 - args.ema) * y, a, p)

    dropout_key = jax.random.PRNGKey(args.seed)
    val = validation_set(args.data)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue(maxsize=8)
    workers = [ctx.Process(target=_worker, args=((queue, args.data, args.seed * 1000 + step + i, args.batch,
                                                   args.synthetic_share, args.real_warp, args.warp_below,
                                                   args.rearrange, args.die_look, args.leave_out, args.streak),), daemon=True)
               for i in range(args.workers)]
    for w in workers:
        w.start()
    started, losses = time.time(), []
    try:
        while step < args.steps:
            xs, labels, pads, states = queue.get()
            key = jax.random.fold_in(dropout_key, step)  # a resumed run draws the same masks
            params, opt_state, loss, ctc, sl = train_step(params, opt_state, xs, labels, pads, states, key)
            step += 1
            if averaged is not None:
                averaged = average(averaged, params)
            losses.append(float(loss))
            if step % 25 == 0:
                progress(step, args.steps, started, f"loss {np.mean(losses[-25:]):.3f} ctc {float(ctc):.3f} state {float(sl):.3f}")
            if step % args.every == 0 or step == args.steps:
                figure = evaluate(predict, params, val)
                if averaged is not None:
                    figure.update({f"ema_{k}": v for k, v in evaluate(predict, averaged, val).items()})
                run.checkpoint(step, params, opt_state, {"loss": float(np.mean(losses[-args.every:])), **figure},
                               averaged)
                print(f"\nstep {step}: loss {np.mean(losses[-args.every:]):.3f} validation {figure}", flush=True)
    finally:
        for w in workers:
            w.terminate()
    if averaged is not None:
        params = averaged
    figure = evaluate(predict, params, val)
    from training.publish import publish_reader

    publish_reader(params, Path(args.out), run, figure, vars(args))
    return 0


def evaluate(predict, params, val) -> dict:
    if val is None:
        return {}
    xs, plates, states = val
    texts, state_right, state_n = [], 0, 0
    for i in range(0, len(xs), 128):
        logits, state_logits = predict(params, xs[i:i + 128])
        texts += greedy(np.asarray(logits))
        for j, s in enumerate(np.asarray(state_logits).argmax(-1)):
            if states[i + j]:
                state_n += 1
                state_right += STATES[s] == states[i + j]
    exact = sum(t == p for t, p in zip(texts, plates))
    return {"val_exact": exact, "val_n": len(plates), "val_exact_rate": round(exact / len(plates), 4),
            "val_state_rate": round(state_right / max(1, state_n), 4)}


if __name__ == "__main__":
    sys.exit(main())
