"""`edge-agent`: a thin command line over the library. Each command is a function a test can call.

Exit status: 0 done, 1 the job failed, 2 bad usage, configuration or input.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence, TextIO

from edge_agent import __version__
from edge_agent.config import Config, load_config
from edge_agent.errors import ConfigError, EdgeAgentError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class Console:
    """Where a command writes: stdout for results, stderr for messages."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def json(self, obj) -> None:
        print(json.dumps(obj, separators=(", ", ": ")), file=self.out, flush=True)

    def error(self, text: str) -> None:
        print(f"edge-agent: {text}", file=self.err, flush=True)


def default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS lets the options stand before or after the subcommand without one overwriting the other
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="configuration file (TOML)")
    common.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help="override the configured data directory")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log progress")

    parser = argparse.ArgumentParser(prog="edge-agent", parents=[common], description="In-car licence plate reader.")
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="capture, read, match, store, alert and sync")
    run.add_argument("--source", help="read from this file, folder, video, device number or rtsp:// URL instead of the cameras")
    run.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (overrides sync.broker)")
    run.set_defaults(func=cmd_run)

    read = sub.add_parser("read", parents=[common], help="read the plates in image files")
    read.add_argument("images", nargs="+", metavar="IMAGE")
    read.add_argument("--json", action="store_true", help="one JSON object per image")
    read.set_defaults(func=cmd_read)

    hotlist = sub.add_parser("hotlist", parents=[common], help="import and check hotlists")
    hsub = hotlist.add_subparsers(dest="hotlist_command", required=True, metavar="SUBCOMMAND")
    imp = hsub.add_parser("import", parents=[common], help="make a CSV extract the list in force")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--user", default=None, help="who is importing (audit log)")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_hotlist_import)
    chk = hsub.add_parser("check", parents=[common], help="look plates up in the list in force")
    chk.add_argument("plates", nargs="*", metavar="PLATE")
    chk.add_argument("--stdin", action="store_true", help="read plates from standard input, one a line")
    chk.add_argument("--state", help="the plate's state, two letters")
    chk.add_argument("--json", action="store_true", help="one JSON line per plate")
    chk.add_argument("--user", default=None, help="who is asking (audit log)")
    chk.add_argument("--purpose", default="", help="why (audit log)")
    chk.set_defaults(func=cmd_hotlist_check)

    bench = sub.add_parser("bench", parents=[common], help="measure accuracy and speed")
    bsub = bench.add_subparsers(dest="bench_command", required=True, metavar="SUBCOMMAND")
    acc = bsub.add_parser("accuracy", parents=[common], help="plate reading accuracy on a labelled set")
    acc.add_argument("--dataset", required=True, metavar="DIR")
    acc.add_argument("--json", action="store_true")
    acc.add_argument("--limit", type=int, default=0, help="only the first N images")
    acc.add_argument("--show-misses", action="store_true", help="print each image read wrongly")
    acc.set_defaults(func=cmd_bench_accuracy)

    stats = sub.add_parser("stats", parents=[common], help="reads stored, sent and waiting")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)

    sync = sub.add_parser("sync", parents=[common], help="send waiting reads to the station")
    sync.add_argument("--once", action="store_true", required=True, help="drain what waits, then exit")
    sync.add_argument("--broker", help="mqtt://host:port (overrides sync.broker)")
    sync.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker")
    sync.set_defaults(func=cmd_sync)

    models = sub.add_parser("models", parents=[common], help="check the model files against models/manifest.toml")
    models.set_defaults(func=cmd_models)

    demo = sub.add_parser("demo", parents=[common], help="synthetic material for the demo")
    dsub = demo.add_subparsers(dest="demo_command", required=True, metavar="SUBCOMMAND")
    render = dsub.add_parser("render", parents=[common], help="render a drive-by clip and a hotlist holding some of its plates")
    render.add_argument("--out", required=True, metavar="DIR")
    render.set_defaults(func=cmd_demo_render)
    return parser


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    console = console or Console()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=console.err)
    try:
        return args.func(args, console)
    except ConfigError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except EdgeAgentError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def config_for(args: argparse.Namespace, **overrides) -> Config:
    config = load_config(getattr(args, "config", None))
    data_dir = getattr(args, "data_dir", None)
    return config.with_overrides(data_dir=Path(data_dir) if data_dir else None, **overrides)


def _reader(config: Config):
    from edge_agent.pipeline import reader_settings
    from edge_agent.recognise.reader import PlateReader

    return PlateReader(reader_settings(config))


# commands ------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.pipeline import Agent

    config = config_for(args, broker=args.broker, source=args.source)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    agent = Agent(config, out=console.print)
    summary = agent.run(stop)
    console.print(f"done: {summary.line()}")
    return EXIT_OK


def cmd_read(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.capture import decode_image
    from edge_agent.errors import ImageError

    reader = _reader(config_for(args))
    failed = 0
    for name in args.images:
        try:
            plates = reader.read(decode_image(Path(name)))
        except ImageError as exc:
            failed += 1
            if args.json:
                console.json({"image": name, "error": str(exc), "plates": []})
            console.error(str(exc))
            continue
        if args.json:
            console.json({"image": name, "plates": [p.to_json() for p in plates]})
        else:
            found = ", ".join(f"{p.text} ({p.confidence:.2f}{', ' + p.state if p.state else ''})" for p in plates)
            console.print(f"{name}: {found or 'no plate'}")
    return EXIT_USAGE if failed == len(args.images) else EXIT_OK


def cmd_hotlist_import(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist import read_hotlist_file, store_hotlist
    from edge_agent.store import Database

    config = config_for(args)
    user = args.user or default_user()
    path = Path(args.file)
    parsed = read_hotlist_file(path, config.hotlist.columns)
    for error in parsed.errors:
        console.error(f"{path}: {error} (row skipped)")
    with Database.in_data_dir(config.data_dir) as db:
        version = store_hotlist(db, parsed, str(path), user)
        db.audit(user, "hotlist.import", f"{path} -> version {version}", "hotlist update")
    result = {"file": str(path), "version": version, "loaded": len(parsed.entries), "rejected": len(parsed.errors),
              "sha256": parsed.sha256}
    if args.json:
        console.json(result)
    else:
        console.print(f"imported {result['loaded']} entries from {path} as version {version}; {result['rejected']} rows rejected")
    return EXIT_OK


def cmd_hotlist_check(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist import HotlistIndex
    from edge_agent.store import Database

    config = config_for(args)
    plates: list[str] = list(args.plates)
    if args.stdin:
        plates.extend(line.strip() for line in sys.stdin if line.strip())
    if not plates:
        console.error("hotlist check: give plates as arguments or with --stdin")
        return EXIT_USAGE
    state = args.state.upper() if args.state else None
    user = args.user or default_user()
    with Database.in_data_dir(config.data_dir) as db:
        index = HotlistIndex.load(db)
        db.audit(user, "hotlist.check", " ".join(plates[:50]) + (" ..." if len(plates) > 50 else ""), args.purpose)
    if index.version is None:
        console.error(f"no hotlist has been imported into {config.data_dir}")
    for plate in plates:
        hits = index.match(plate, state)
        if args.json:
            console.json({"plate": plate, "hits": [h.to_json() for h in hits]})
        else:
            console.print(f"{plate}: " + ("; ".join(f"{h.list_name} {h.lis} ({h.match})" for h in hits) or "no hit"))
    return EXIT_OK


def cmd_bench_accuracy(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench import bench_accuracy, load_dataset

    items = load_dataset(Path(args.dataset))
    if args.limit:
        items = items[: args.limit]
    reader = _reader(config_for(args))

    def show(item, plates, ms) -> None:
        first = plates[0].text if plates else ""
        if args.show_misses and first != item.plate:
            console.error(f"miss {item.path.name}: label {item.plate}, read {[p.text for p in plates]}")

    result = bench_accuracy(reader, items, show)
    if args.json:
        console.json(result)
    else:
        console.print(" ".join(f"{k}={v}" for k, v in result.items()))
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.store import Database

    config = config_for(args)
    with Database.in_data_dir(config.data_dir) as db:
        stats = db.stats().to_json()
        stats["yearly"] = {str(y): c for y, c in db.yearly_counts().items()}
    if args.json:
        console.json(stats)
    else:
        console.print(f"reads={stats['reads']} sent={stats['sent']} waiting={stats['waiting']} hits={stats['hits']}")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.store import Database
    from edge_agent.sync import MqttSync

    config = config_for(args, broker=args.broker)
    if not config.sync.broker:
        raise ConfigError(config.source_file, "sync.broker", "no broker configured (give --broker mqtt://host:port)")
    with Database.in_data_dir(config.data_dir) as db:
        sync = MqttSync(config, db)
        sync.start()
        try:
            if not sync.connected.wait(args.timeout):
                console.error(f"broker {config.sync.broker} not reachable within {args.timeout:g} s; reads stay waiting")
                return EXIT_FAILED
            sent = sync.drain()
        finally:
            sync.stop()
        waiting = db.stats().waiting
    console.print(f"sent {sent} reads; {waiting} waiting")
    return EXIT_OK if waiting == 0 else EXIT_FAILED


def cmd_models(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.recognise.models import load_manifest, verify_model

    for role, spec in load_manifest().items():
        path = verify_model(spec)
        console.print(f"ok {spec.name} ({role}) {path} sha256={spec.sha256[:16]}... license={spec.license}")
    return EXIT_OK


def cmd_demo_render(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.synthetic import render_drive_by, write_hotlist

    out = Path(args.out)
    plates = ["7ABC123", "5TRK442", "6WNP018", "8LMN905", "4GHT271"]
    clip = render_drive_by(out / "drive-by.avi", plates)
    hotlist = write_hotlist(out / "hotlist.csv", {"7ABC123": "STOLEN_VEHICLE", "8LMN905": "AMBER_ALERT"})
    console.print(f"rendered {clip.frames} frames of {len(plates)} cars to {clip.path}; hotlist {hotlist}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
