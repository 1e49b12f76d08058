"""What every recipe shares: a run folder with checkpoints it resumes from, a log, and a progress line."""

from __future__ import annotations

import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np


def progress(step: int, total: int, started: float, text: str) -> None:
    done = step / total
    bar = "#" * int(30 * done) + "-" * (30 - int(30 * done))
    elapsed = time.time() - started
    # a bar redrawn in place on a terminal; a line each time in a log file (nohup) or the journal
    end = "" if sys.stdout.isatty() else "\n"
    sys.stdout.write(f"{chr(13) if end == '' else ''}[{bar}] {step}/{total} {text} {elapsed / 60:.1f} min{end}")
    sys.stdout.flush()


class Run:
    """A training run's folder: `config.json`, `checkpoint.pkl` (the last), `log.jsonl` (one line a checkpoint)."""

    def __init__(self, folder: Path, config: dict):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.averaged = None  # the running average of the weights (--ema) resume found, if any
        saved = self.folder / "config.json"
        if saved.is_file():
            before = json.loads(saved.read_text())
            # an option added since the run began, left off (0, None, False), is what the run was made with
            now = json.loads(json.dumps(config))  # as saved: a tuple (--leave-out) reads back as a list
            changed = {k: (before.get(k), v) for k, v in now.items()
                       if k not in ("steps", "run", "out", "name") and before.get(k) != v and (k in before or v)}
            if changed:
                raise SystemExit(f"{self.folder}: resuming a run made with other settings {changed}; use another --run")
        saved.write_text(json.dumps(config, indent=1))

    def resume(self, params, opt_state):
        path = self.folder / "checkpoint.pkl"
        if not path.is_file():
            return 0, params, opt_state
        import jax

        with path.open("rb") as fh:
            saved = pickle.load(fh)
        print(f"resuming {self.folder} at step {saved['step']}", flush=True)
        treedef = jax.tree_util.tree_structure(opt_state)
        opt_state = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(a) for a in saved["opt_state"]])
        if "averaged" in saved:
            self.averaged = jax.tree_util.tree_map(jax.numpy.asarray, saved["averaged"])
        return saved["step"], jax.tree_util.tree_map(jax.numpy.asarray, saved["params"]), opt_state

    def checkpoint(self, step: int, params, opt_state, figures: dict, averaged=None) -> None:
        import jax

        saved = {"step": step, "params": jax.tree_util.tree_map(np.asarray, params),
                 "opt_state": [np.asarray(a) for a in jax.tree_util.tree_leaves(opt_state)]}
        if averaged is not None:
            saved["averaged"] = jax.tree_util.tree_map(np.asarray, averaged)
        tmp = self.folder / "checkpoint.pkl.tmp"
        with tmp.open("wb") as fh:
            pickle.dump(saved, fh)
        tmp.replace(self.folder / "checkpoint.pkl")  # a stop mid-write leaves the last whole checkpoint
        with (self.folder / "log.jsonl").open("a") as fh:
            fh.write(json.dumps({"step": step, "time": time.time(), **figures}) + "\n")

    def log(self) -> list[dict]:
        path = self.folder / "log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def train(run: Run, step: int, steps: int, every: int, params, opt_state, train_step, batches, evaluate,
          describe=lambda extras: "") -> tuple:
    """The loop the recipes share: a batch from `batches` (a queue's get), `train_step(params, opt_state,
    *batch)` -> (params, opt_state, loss, *extras), a progress line every 10 steps, and every `every` steps
    (and the last) `evaluate(params)` on the validation part and a checkpoint. Returns (params, opt_state)."""
    started, losses = time.time(), []
    while step < steps:
        params, opt_state, loss, *extras = train_step(params, opt_state, *batches())
        step += 1
        losses.append(float(loss))
        if step % 10 == 0:
            progress(step, steps, started, f"loss {np.mean(losses[-10:]):.3f}{describe(extras)}")
        if step % every == 0 or step == steps:
            figure = evaluate(params)
            run.checkpoint(step, params, opt_state, {"loss": float(np.mean(losses[-every:])), **figure})
            print(f"\nstep {step}: loss {np.mean(losses[-every:]):.3f} validation {figure}", flush=True)
    return params, opt_state


class SampleWorkers:
    """Processes that make training batches (spawned: JAX is not fork-safe) into a bounded queue; `with` stops
    them. `target(args)` gets (queue, *each of worker_args)."""

    def __init__(self, target, worker_args: list[tuple], maxsize: int = 8):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.queue = ctx.Queue(maxsize=maxsize)
        self.processes = [ctx.Process(target=target, args=((self.queue, *a),), daemon=True) for a in worker_args]

    def __enter__(self):
        for p in self.processes:
            p.start()
        return self.queue.get

    def __exit__(self, *exc):
        for p in self.processes:
            p.terminate()
        return False


def recipe_parser(name: str, *, steps: int, batch: int, lr: float, every: int, seed: int):
    """The options every recipe takes, with its own defaults; a recipe adds its own after these."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"scripts/train {name}")
    parser.add_argument("--data", default=None, help="the shared plate photographs (../shared/data/us-plates)")
    parser.add_argument("--run", default=f"training/runs/{name}", help="checkpoints and log")
    parser.add_argument("--out", default="models", help="where the ONNX file, card and manifest entry go")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--every", type=int, default=every, help="steps between checkpoints and validation")
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--workers", type=int, default=1)
    return parser


def leave_out_option(parser) -> None:
    parser.add_argument("--leave-out", type=fold, default=None, metavar="K/N",
                        help="train without fold K of N of the train part (a model for fitting rules on what it "
                             "never saw: `scripts/train rules --fold-models`); needs --out other than models")


def fold(text: str) -> tuple[int, int]:
    """'K/N' (0 <= K < N) as (K, N)."""
    import argparse

    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected K/N, such as 0/2") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"{text!r}: K must be from 0 to N-1")
    return k, n


def check_out(parser, args) -> None:
    """A model trained without a fold of the train part is for fitting rules, never the agent's."""
    from edge_agent.recognise.models import MODELS_DIR

    # the agent's folder itself, however --out names it (`models` is a link to it in a checkout)
    if args.leave_out is not None and Path(args.out).resolve() == MODELS_DIR.resolve():
        parser.error("--leave-out needs --out other than models: such a model is not the agent's")
