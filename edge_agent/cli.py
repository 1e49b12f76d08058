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
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence, TextIO

from edge_agent import __version__
from edge_agent.config import Config, load_config
from edge_agent.errors import ConfigError, EdgeAgentError
from edge_agent.pki import ROLES as ROLES_PKI

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
    common.add_argument("--log-format", choices=("text", "json"), default=argparse.SUPPRESS,
                        help="log lines as text (default) or one JSON object each (for a log collector)")

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

    hotlist = sub.add_parser("hotlist", parents=[common], help="import, check and edit hotlists")
    login = argparse.ArgumentParser(add_help=False)
    login.add_argument("--user", required=True, help="your user name (a trained user; the password is asked, or "
                                                     "read from $EDGE_AGENT_PASSWORD)")
    login.add_argument("--purpose", required=True, help="why: a case number or a reason (kept in the audit log)")
    hsub = hotlist.add_subparsers(dest="hotlist_command", required=True, metavar="SUBCOMMAND")
    imp = hsub.add_parser("import", parents=[common], help="make an extract the list in force, or apply an update (ADD/CLEAR)")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--signature", metavar="SIG", help="the station's signature envelope (default FILE.sig when present)")
    imp.add_argument("--force", action="store_true", help="accept a full list much smaller than the one in force")
    imp.add_argument("--user", default=None, help="who is importing (audit log)")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=cmd_hotlist_import)
    chk = hsub.add_parser("check", parents=[common, login], help="look plates up in the list in force")
    chk.add_argument("plates", nargs="*", metavar="PLATE")
    chk.add_argument("--stdin", action="store_true", help="read plates from standard input, one a line")
    chk.add_argument("--state", help="the plate's state, two letters")
    chk.add_argument("--exact-only", action="store_true", help="no misread-tolerant or partial matches")
    chk.add_argument("--json", action="store_true", help="one JSON line per plate")
    chk.set_defaults(func=cmd_hotlist_check)
    add = hsub.add_parser("add", parents=[common, login], help="enter a plate or a partial plate (wildcards ? and *) by hand")
    add.add_argument("plate", metavar="PLATE", help="e.g. 7ABC123, or 7AB?12* for a partial plate")
    add.add_argument("--list", default="BOLO", dest="list_name", help="which list (default BOLO)")
    add.add_argument("--reason", required=True, help="case number or why the plate is wanted")
    add.add_argument("--state", default="", help="two letters; leave out to match any state")
    add.add_argument("--expires", default=None, metavar="YYYY-MM-DD", help="last day it matches")
    add.add_argument("--json", action="store_true")
    add.set_defaults(func=cmd_hotlist_add)
    rem = hsub.add_parser("remove", parents=[common, login], help="remove an officer's entry by its id")
    rem.add_argument("entry_id", type=int, metavar="ID")
    rem.set_defaults(func=cmd_hotlist_remove)
    loc = hsub.add_parser("local", parents=[common], help="list the officers' entries in force")
    loc.add_argument("--json", action="store_true")
    loc.set_defaults(func=cmd_hotlist_local)
    st = hsub.add_parser("status", parents=[common], help="the list in force and its versions")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_hotlist_status)
    keygen = hsub.add_parser("keygen", parents=[common], help="station: make a signing key pair")
    keygen.add_argument("--out", required=True, metavar="DIR")
    keygen.add_argument("--force", action="store_true", help="replace an existing key pair")
    keygen.set_defaults(func=cmd_hotlist_keygen)
    sign = hsub.add_parser("sign", parents=[common], help="station: sign a list or an update for the fleet")
    sign.add_argument("file", metavar="FILE")
    sign.add_argument("--key", required=True, metavar="KEY", help="the station's private key (PEM)")
    sign.add_argument("--version", required=True, type=int, dest="list_version", help="version number; must grow")
    sign.add_argument("--out", metavar="SIG", help="where the envelope goes (default FILE.sig)")
    sign.set_defaults(func=cmd_hotlist_sign)
    pub = hsub.add_parser("publish", parents=[common], help="station: send a signed list to the fleet over MQTT")
    pub.add_argument("file", metavar="FILE")
    pub.add_argument("--signature", metavar="SIG", help="default FILE.sig")
    pub.add_argument("--broker", required=True, help="mqtt://host:port")
    pub.add_argument("--retain", action="store_true", help="keep it on the broker for units that connect later (full lists)")
    pub.set_defaults(func=cmd_hotlist_publish)

    alerts = sub.add_parser("alerts", parents=[common], help="alerts raised, and what came of them")
    asub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="SUBCOMMAND")
    alist = asub.add_parser("list", parents=[common, login], help="recent alerts")
    alist.add_argument("--open", action="store_true", help="only those without a disposition")
    alist.add_argument("--limit", type=int, default=50)
    alist.add_argument("--json", action="store_true")
    alist.add_argument("--csv", action="store_true", help="as CSV (cells a spreadsheet would run are neutralised)")
    alist.set_defaults(func=cmd_alerts_list)
    ack = asub.add_parser("ack", parents=[common, login], help="record the disposition of an alert")
    ack.add_argument("alert_id", type=int, metavar="ID")
    from edge_agent.alert.ledger import DISPOSITIONS

    ack.add_argument("--disposition", required=True, help=" | ".join(DISPOSITIONS))
    ack.add_argument("--note", default="")
    ack.add_argument("--json", action="store_true")
    ack.set_defaults(func=cmd_alerts_ack)

    bench = sub.add_parser("bench", parents=[common], help="measure accuracy and speed")
    bsub = bench.add_subparsers(dest="bench_command", required=True, metavar="SUBCOMMAND")
    acc = bsub.add_parser("accuracy", parents=[common], help="plate reading accuracy on a labelled set")
    acc.add_argument("--dataset", required=True, metavar="DIR")
    acc.add_argument("--json", action="store_true")
    acc.add_argument("--limit", type=int, default=0, help="only the first N images")
    acc.add_argument("--show-misses", action="store_true", help="print each image read wrongly, and each whose state is wrong")
    acc.add_argument("--part", choices=("all", "train", "validation"), default="all",
                     help="the part of the committed train/validation split of the shared photographs")
    acc.add_argument("--look", default="as-is",
                     help="see each image otherwise first (as a night camera, at another resolution, compressed, "
                          "at dusk, blurred, turned, from the side, streaked as it passes: an unknown look lists "
                          "them all); as-is by default")
    acc.set_defaults(func=cmd_bench_accuracy)
    fr = bsub.add_parser("false-reads", parents=[common],
                         help="reads left on labelled frames once their plate is painted out (badges, signs, stamps)")
    fr.add_argument("--dataset", required=True, metavar="DIR", help="frames with NAME.txt labels giving the plate's box")
    fr.add_argument("--json", action="store_true")
    fr.add_argument("--limit", type=int, default=0, help="only the first N images")
    fr.add_argument("--part", choices=("all", "train", "validation"), default="all",
                    help="the part of the committed train/validation split of the shared photographs")
    fr.set_defaults(func=cmd_bench_false_reads)
    sp = bsub.add_parser("speed", parents=[common], help="frames per second, latency, CPU and memory over a video or frames")
    sp.add_argument("--source", required=True, metavar="PATH", help="a video file, a folder of images or one image")
    sp.add_argument("--limit", type=int, default=0, help="time only the first N frames")
    sp.add_argument("--camera", metavar="ID",
                    help="use this configured camera's region and side view (default: the whole frame, from ahead)")
    sp.add_argument("--side-view", action="store_true",
                    help="read the frames as a side camera's: the side-view detector searches them too")
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--baseline", choices=("generic",),
                    help="also time the generic OCR call (rapidocr, default settings, whole frame) on the same frames, "
                         "in a separate process, and give the ratio")
    sp.set_defaults(func=cmd_bench_speed)
    hb = bsub.add_parser("hotlist", parents=[common], help="hotlist import, start-up, memory, lookup speed and false hits")
    hb.add_argument("--list", required=True, metavar="FILE", help="a full extract to import (e.g. a million rows)")
    hb.add_argument("--plates", type=int, default=10_000, help="plates to look up (default 10000)")
    hb.add_argument("--seed", type=int, default=7)
    hb.add_argument("--json", action="store_true")
    hb.set_defaults(func=cmd_bench_hotlist)

    bs = bsub.add_parser("sync", parents=[common], help="store reads, then drain them to a station on this machine")
    bs.add_argument("--reads", type=int, default=100_000)
    bs.add_argument("--batch-size", type=int, default=200)
    bs.add_argument("--in-flight", type=int, default=4)
    bs.add_argument("--work", metavar="DIR", help="keep the unit's and station's files here (default: a temporary folder)")
    bs.add_argument("--tls", action="store_true", help="through the shipped broker configuration: TLS, client "
                    "certificates from a PKI made for the run, signed acknowledgements (default: plain MQTT)")
    bs.add_argument("--faults", type=int, default=0, metavar="N",
                    help="the exactly-once run: N faults (killed syncs, broker restarts, killed stations) while "
                         "`sync --once` processes drain --reads (give --reads 4000); with --tls")
    bs.add_argument("--seed", type=int, default=7, help="the faults' order and timing")
    bs.add_argument("--json", action="store_true")
    bs.set_defaults(func=cmd_bench_sync)
    bw = bsub.add_parser("storage", parents=[common], help="a unit offline for a week: reads with images under the cap")
    bw.add_argument("--reads", type=int, default=50_000)
    bw.add_argument("--cap-mb", type=float, default=2048.0)
    bw.add_argument("--work", metavar="DIR")
    bw.add_argument("--json", action="store_true")
    bw.set_defaults(func=cmd_bench_storage)
    ba = bsub.add_parser("audit", parents=[common], help="verify an audit chain of N records (target: 1,000,000 in 10 s)")
    ba.add_argument("--records", type=int, default=1_000_000)
    ba.add_argument("--work", metavar="DIR")
    ba.add_argument("--json", action="store_true")
    ba.set_defaults(func=cmd_bench_audit)
    bq = bsub.add_parser("search", parents=[common], help="search 30 days of a unit's reads (target: under 200 ms)")
    bq.add_argument("--reads", type=int, default=90_000)
    bq.add_argument("--work", metavar="DIR")
    bq.add_argument("--json", action="store_true")
    bq.set_defaults(func=cmd_bench_search)
    bf = bsub.add_parser("fleet-report", parents=[common],
                         help="the station's yearly report over 30 million reads in PostgreSQL (target: under 5 s)")
    bf.add_argument("--reads", type=int, default=30_000_000)
    bf.add_argument("--ingested", type=int, default=1_000_000, help="of them, how many go through the ingest path")
    bf.add_argument("--units", type=int, default=60)
    bf.add_argument("--db", help="an empty PostgreSQL database (default: a throwaway server started for the run)")
    bf.add_argument("--json", action="store_true")
    bf.set_defaults(func=cmd_bench_fleet)
    br = bsub.add_parser("restart", parents=[common], help="a failed and a hung recognition part: back at work within 5 s?")
    br.add_argument("--json", action="store_true")
    br.set_defaults(func=cmd_bench_restart)
    bn = bsub.add_parser("screen", parents=[common], help="the officer's screen: a hit's delay to the page (target: "
                                                          "500 ms), its CPU idle and at 20 reads a second (5%%, 10%%)")
    bn.add_argument("--seconds", type=float, default=30.0, help="length of the burst")
    bn.add_argument("--rate", type=float, default=20.0, help="reads a second in the burst")
    bn.add_argument("--hits-every", type=int, default=5, help="one read in N hits a list")
    bn.add_argument("--idle-seconds", type=float, default=30.0)
    bn.add_argument("--work", metavar="DIR")
    bn.add_argument("--json", action="store_true")
    bn.set_defaults(func=cmd_bench_screen)
    bk = bsub.add_parser("soak", parents=[common], help="an hour on two cameras (a looping video, a stream unplugged "
                                                         "every 3 minutes): memory, threads, files, one read per pass")
    bk.add_argument("--minutes", type=float, default=60.0)
    bk.add_argument("--warmup-minutes", type=float, default=5.0)
    bk.add_argument("--work", metavar="DIR")
    bk.add_argument("--json", action="store_true")
    bk.set_defaults(func=cmd_bench_soak)

    stats = sub.add_parser("stats", parents=[common], help="reads stored, sent and waiting")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)

    sync = sub.add_parser("sync", parents=[common], help="send waiting records to the station")
    sync.add_argument("--once", action="store_true", help="drain what waits, then exit")
    sync.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (overrides sync.broker)")
    sync.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker")
    sync.add_argument("--drain-timeout", type=float, default=600.0,
                      help="seconds to keep draining before giving up (default 600)")
    sync.add_argument("--json", action="store_true")
    sync.set_defaults(func=cmd_sync)
    ssub = sync.add_subparsers(dest="sync_command", required=False, metavar="SUBCOMMAND")
    skey = ssub.add_parser("keygen", parents=[common], help="make this unit's batch signing key pair")
    skey.add_argument("--out", required=True, metavar="DIR", help="UNIT.key stays on the unit, UNIT.pub goes to the station")
    skey.add_argument("--force", action="store_true", help="replace an existing key pair")
    skey.set_defaults(func=cmd_sync_keygen)

    purge = sub.add_parser("purge", parents=[common], help="purge sent reads past storage.retention_days (not evidence)")
    purge.add_argument("--user", default=None, help="who runs it (audit log)")
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(func=cmd_purge)

    station = sub.add_parser("station", parents=[common], help="the station's receiver (runs until SIGTERM)")
    station.add_argument("--broker", help="mqtt://host:port or mqtts://host:port (overrides sync.broker)")
    station.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (overrides station.database)")
    station.add_argument("--hotlist", metavar="FILE", help="signed list to keep published for the fleet (FILE.sig beside it)")
    station.add_argument("--name", help="this receiver's name, stable across restarts (default the host name; give each receiver on one host its own)")
    station.set_defaults(func=cmd_station)
    stsub = station.add_subparsers(dest="station_command", required=False, metavar="SUBCOMMAND")
    sst = stsub.add_parser("stats", parents=[common], help="units, reads, hits and duplicates refused")
    sst.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (overrides station.database)")
    sst.add_argument("--json", action="store_true")
    sst.set_defaults(func=cmd_station_stats)

    sshare = stsub.add_parser("sharing", parents=[common], help="the sharing register: agencies shared with and received from")
    shsub = sshare.add_subparsers(dest="sharing_command", required=True, metavar="SUBCOMMAND")
    shadd = shsub.add_parser("add", parents=[common], help="record an approved written request")
    for flag in ("--agency-name", "--jurisdiction", "--requester", "--purpose", "--approved-by", "--approved-on",
                 "--request-file"):
        shadd.add_argument(flag, required=True)
    shadd.add_argument("--direction", required=True, choices=("share", "receive"))
    shadd.add_argument("--data", required=True, choices=("alpr", "hotlist"))
    shadd.add_argument("--db", default=argparse.SUPPRESS)
    shadd.add_argument("--user", default=None, help="who records it (audit)")
    shadd.set_defaults(func=cmd_station_sharing_add)
    shlist = shsub.add_parser("list", parents=[common], help="the register")
    shlist.add_argument("--db", default=argparse.SUPPRESS)
    shlist.add_argument("--json", action="store_true")
    shlist.set_defaults(func=cmd_station_sharing_list)
    spurge = stsub.add_parser("purge", parents=[common],
                              help="purge reads past station.retention_days (never under the minimum; not evidence)")
    spurge.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (overrides station.database)")
    spurge.add_argument("--user", default=None, help="who runs it (audit; default: the login name)")
    spurge.add_argument("--json", action="store_true")
    spurge.set_defaults(func=cmd_station_purge)
    saudit = stsub.add_parser("audit", parents=[common], help="the units' audit chains as the station holds them")
    sasub = saudit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    sav = sasub.add_parser("verify", parents=[common], help="verify each unit's chain and its checkpoints")
    sav.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (overrides station.database)")
    sav.add_argument("--json", action="store_true")
    sav.set_defaults(func=cmd_station_audit_verify)
    susers = stsub.add_parser("users", parents=[common],
                              help="the fleet's trained users, sent to every unit as a signed roster")
    susub = susers.add_subparsers(dest="station_users_command", required=True, metavar="SUBCOMMAND")
    suadd = susub.add_parser("add", parents=[common], help="add or renew a user (the password from $EDGE_AGENT_NEW_PASSWORD or asked)")
    suadd.add_argument("name")
    _user_arguments(suadd)
    suadd.add_argument("--as", dest="admin", help="the fleet administrator making the change (not for the first user)")
    suadd.add_argument("--db", default=argparse.SUPPRESS)
    suadd.set_defaults(func=cmd_station_users_add)
    suoff = susub.add_parser("deactivate", parents=[common], help="take a user's access away on every unit")
    suoff.add_argument("name")
    suoff.add_argument("--as", dest="admin", required=True, help="the fleet administrator making the change")
    suoff.add_argument("--db", default=argparse.SUPPRESS)
    suoff.set_defaults(func=cmd_station_users_deactivate)
    sulist = susub.add_parser("list", parents=[common], help="the roster")
    sulist.add_argument("--db", default=argparse.SUPPRESS)
    sulist.add_argument("--json", action="store_true")
    sulist.set_defaults(func=cmd_station_users_list)
    splates = stsub.add_parser("plates", parents=[common],
                               help="plates officers entered on their units; pass them to the whole fleet")
    spsub = splates.add_subparsers(dest="station_plates_command", required=True, metavar="SUBCOMMAND")
    splist = spsub.add_parser("list", parents=[common, login], help="the officers' plates in force")
    splist.add_argument("--db", default=argparse.SUPPRESS)
    splist.add_argument("--json", action="store_true")
    splist.set_defaults(func=cmd_station_plates_list)
    for name, text in (("share", "pass a plate to every unit (a supervisor or administrator logs in)"),
                       ("unshare", "stop passing a plate to the fleet")):
        sp = spsub.add_parser(name, parents=[common, login], help=text)
        sp.add_argument("uuid", help="the plate's uuid (station plates list)")
        sp.add_argument("--db", default=argparse.SUPPRESS)
        sp.set_defaults(func=cmd_station_plates_share, share=name == "share")
    ssearch = stsub.add_parser("search", parents=[common, login],
                               help="the fleet's reads of a plate, as `search` on a unit (a roster user logs in)")
    _search_arguments(ssearch)
    ssearch.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (overrides station.database)")
    ssearch.add_argument("--json", action="store_true")
    ssearch.set_defaults(func=cmd_station_search)
    srep = stsub.add_parser("report", parents=[common],
                            help="the fleet's figures for a year: detections, hits by list, dispositions, searches, sharing")
    srep.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (overrides station.database)")
    _report_arguments(srep)
    srep.set_defaults(func=cmd_station_report)
    sun = stsub.add_parser("units", parents=[common], help="every unit: last contact, clock skew, versions, waiting, certificate expiry")
    sun.add_argument("--db", default=argparse.SUPPRESS, help="SQLite file or postgresql:// URL (overrides station.database)")
    sun.add_argument("--json", action="store_true")
    sun.set_defaults(func=cmd_station_units)


    search = sub.add_parser("search", parents=[common, login], help="reads of a plate: full, partial (* ?) or misread-tolerant")
    _search_arguments(search)
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    export = sub.add_parser("export", parents=[common, login],
                            help="the reads of a search, with images and a sha256 manifest, for evidence (put on hold)")
    export.add_argument("plate")
    export.add_argument("--out", required=True, help="a new folder")
    export.add_argument("--tolerant", action="store_true")
    export.add_argument("--redacted", action="store_true", help="for public release: other vehicles' plates pixelated")
    export.add_argument("--since")
    export.add_argument("--until")
    export.set_defaults(func=cmd_export)

    report = sub.add_parser("report", parents=[common, login],
                            help="the year's figures for records requests: detections, hits by list, dispositions, searches")
    _report_arguments(report)
    report.set_defaults(func=cmd_report)

    policy = sub.add_parser("policy", parents=[common], help="the usage and privacy policy to publish, from the configuration")
    policy.add_argument("--agency-name", default="", help="the department's full name")
    policy.add_argument("--out", help="write the HTML page here (default: standard output)")
    policy.set_defaults(func=cmd_policy)

    users = sub.add_parser("users", parents=[common], help="trained users and their roles")
    usub = users.add_subparsers(dest="users_command", required=True, metavar="SUBCOMMAND")
    uadd = usub.add_parser("add", parents=[common], help="add a trained user (the first is the unit's administrator)")
    uadd.add_argument("name")
    _user_arguments(uadd)
    uadd.add_argument("--as", dest="admin", help="the administrator adding the user (not needed for the first)")
    uadd.set_defaults(func=cmd_users_add)
    ulist = usub.add_parser("list", parents=[common, login], help="users, roles and training dates")
    ulist.add_argument("--json", action="store_true")
    ulist.set_defaults(func=cmd_users_list)

    audit = sub.add_parser("audit", parents=[common], help="the audit log: verify its chain, search it")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    averify = asub.add_parser("verify", parents=[common], help="recompute the hash chain; name the first bad record")
    averify.add_argument("--json", action="store_true")
    averify.set_defaults(func=cmd_audit_verify)
    asearch = asub.add_parser("search", parents=[common, login], help="who looked at a plate, or what a user looked at, and why")
    asearch.add_argument("--plate")
    asearch.add_argument("--by", metavar="USER", help="what this user looked at")
    asearch.add_argument("--json", action="store_true")
    asearch.set_defaults(func=cmd_audit_search)

    status = sub.add_parser("status", parents=[common], help="what the running agent is doing: cameras, reads, sync, disk")
    status.add_argument("--json", action="store_true", help="the figures as one JSON object")
    status.set_defaults(func=cmd_status)

    selftest = sub.add_parser("selftest", parents=[common],
                              help="check cameras, models, GPS, clock, broker, disk, hotlist and audio (PASS/WARN/FAIL)")
    selftest.add_argument("--json", action="store_true", help="the checks as JSON")
    selftest.set_defaults(func=cmd_selftest)

    cfg = sub.add_parser("config", parents=[common], help="the configuration")
    csub = cfg.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    ccheck = csub.add_parser("check", parents=[common], help="every problem of a configuration file at once")
    ccheck.add_argument("file", nargs="?", help="the file (default: --config, $EDGE_AGENT_CONFIG or /etc/edge-agent)")
    ccheck.set_defaults(func=cmd_config_check)

    pki = sub.add_parser("pki", parents=[common], help="station: the agency CA, certificates, revocations")
    psub = pki.add_subparsers(dest="pki_command", required=True, metavar="SUBCOMMAND")
    pdir = argparse.ArgumentParser(add_help=False)
    pdir.add_argument("--dir", metavar="DIR", help="the PKI folder (default DATA_DIR/pki)")
    pinit = psub.add_parser("init", parents=[common, pdir], help="make the agency CA, an empty CRL and the broker's ACL")
    pinit.add_argument("--force", action="store_true", help="replace an existing CA (every certificate must be issued again)")
    pinit.set_defaults(func=cmd_pki_init)
    pissue = psub.add_parser("issue", parents=[common, pdir], help="a key and certificate for the broker, a station or a unit")
    pissue.add_argument("role", choices=ROLES_PKI)
    pissue.add_argument("name", help="unit id, station name, or the broker's or a unit screen's host name")
    pissue.add_argument("--host", action="append", default=[],
                        help="broker, screen: a host name or IP address clients use (repeat)")
    pissue.add_argument("--days", type=int, default=None, help="validity (default two years)")
    pissue.add_argument("--force", action="store_true", help="issue a new key although one is in force")
    pissue.set_defaults(func=cmd_pki_issue)
    prenew = psub.add_parser("renew", parents=[common, pdir], help="a new certificate for the same key")
    prenew.add_argument("role", choices=ROLES_PKI)
    prenew.add_argument("name")
    prenew.add_argument("--days", type=int, default=None)
    prenew.set_defaults(func=cmd_pki_renew)
    prevoke = psub.add_parser("revoke", parents=[common, pdir], help="revoke a unit's (or --role's) certificates")
    prevoke.add_argument("name", help="the unit id (or station name with --role station)")
    prevoke.add_argument("--role", choices=ROLES_PKI, default="unit")
    prevoke.set_defaults(func=cmd_pki_revoke)
    plist = psub.add_parser("list", parents=[common, pdir], help="certificates issued, their expiry and revocation")
    plist.add_argument("--json", action="store_true")
    plist.set_defaults(func=cmd_pki_list)

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
    os.umask(0o027)  # what the agent writes is for its user and group alone (the systemd unit sets the same)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    setup_logging(console.err, getattr(args, "verbose", False), getattr(args, "log_format", "text"))
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


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(stream, verbose: bool, log_format: str) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter() if log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_edge_agent", False):
            root.removeHandler(old)
    handler._edge_agent = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


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
    if not config.cameras:
        raise ConfigError(config.source_file, "camera", "no [[camera]] configured and no --source given")
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    agent = Agent(config, out=console.print)
    summary = agent.run(stop)
    console.print(f"done: {summary.line()}")
    return EXIT_FAILED if summary.errors else EXIT_OK  # an input that could not be read, a part that failed


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
    return EXIT_FAILED if failed else EXIT_OK  # some images could not be read: a script must know


def cmd_hotlist_import(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import hotlist_imported, system_session
    from edge_agent.hotlist import import_file
    from edge_agent.hotlist.storage import open_hotlist_db
    from edge_agent.store import Database

    config = config_for(args)
    user = args.user or default_user()
    path = Path(args.file)
    from edge_agent.progress import Progress

    with open_hotlist_db(config.data_dir) as hdb, Progress(f"importing {path.name}", None, "rows", console.err) as bar:
        stream, result = import_file(hdb, config.hotlist, path, user, Path(args.signature) if args.signature else None,
                                     args.force, on_rows=bar.update)
    for error in stream.errors:
        console.error(f"{path}: {error} (row skipped)")
    for warning in result.warnings:
        console.error(f"{path}: {warning}")
    with Database.for_config(config) as db:
        hotlist_imported(db, system_session("hotlist", config.agent.unit_id), f"{path} by {user}", result)
    if args.json:
        console.json(result.to_json())
    elif result.kind == "delta":
        console.print(f"applied update {path} as version {result.version}: {result.added} added, {result.cleared} cleared, "
                      f"{result.rejected} rows rejected; {result.entries_in_force} entries in force")
    else:
        console.print(f"imported {result.loaded} entries from {path} as version {result.version}; "
                      f"{result.rejected} rows rejected ({result.seconds:.1f} s)")
    return EXIT_OK


def cmd_hotlist_check(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access.duties import check_plates
    from edge_agent.hotlist import load_index
    from edge_agent.hotlist.storage import open_hotlist_db
    from edge_agent.store import Database

    config = config_for(args)
    plates: list[str] = list(args.plates)
    if args.stdin:
        plates.extend(line.strip() for line in sys.stdin if line.strip())
    if not plates:
        console.error("hotlist check: give plates as arguments or with --stdin")
        return EXIT_USAGE
    state = args.state.upper() if args.state else None
    with open_hotlist_db(config.data_dir) as hdb:
        index = load_index(hdb)
    with Database.for_config(config) as db:
        results = check_plates(db, _session(args, db), index, plates, state, args.exact_only)
    no_list = index.version is None and not len(index)
    if no_list:
        console.error(f"no hotlist has been imported into {config.data_dir}")
    bad = 0
    for plate, hits in results:
        if isinstance(hits, str):
            bad += 1
            console.error(f"hotlist check: {hits}")
            if args.json:
                console.json({"plate": plate, "error": hits, "hits": []})
        elif args.json:
            console.json({"plate": plate, "hits": [h.to_json() for h in hits]})
        else:
            console.print(f"{plate}: " + ("; ".join(f"{h.list_name} {h.lic} {h.lis or '-'} ({h.match})" for h in hits)
                                          or "no hit"))
    if bad:
        return EXIT_USAGE
    return EXIT_FAILED if no_list else EXIT_OK  # checked against nothing: not what was asked


def cmd_hotlist_add(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access.duties import add_officer_plate
    from edge_agent.hotlist.storage import open_hotlist_db
    from edge_agent.store import Database

    config = config_for(args)
    with Database.for_config(config) as db:
        session = _session(args, db)
        try:
            with open_hotlist_db(config.data_dir) as hdb:
                entry = add_officer_plate(db, session, hdb, args.plate, args.list_name, args.reason, args.state,
                                          args.expires)
        except ValueError as exc:
            console.error(f"hotlist add: {exc}; nothing was added")
            return EXIT_USAGE
    kind = "partial plate" if entry.pattern.is_wildcard else "plate"
    if args.json:
        console.json(entry.to_json())
    else:
        console.print(f"added local entry {entry.id}: {kind} {entry.pattern.text} ({entry.state or 'any state'}) "
                      f"on {entry.list_name}")
    return EXIT_OK


def cmd_hotlist_remove(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access.duties import remove_officer_plate
    from edge_agent.hotlist.storage import open_hotlist_db
    from edge_agent.store import Database

    config = config_for(args)
    with Database.for_config(config) as db:
        session = _session(args, db)
        try:
            with open_hotlist_db(config.data_dir) as hdb:
                entry = remove_officer_plate(db, session, hdb, args.entry_id)
        except ValueError as exc:
            console.error(f"hotlist remove: {exc}")
            return EXIT_USAGE
    console.print(f"removed local entry {entry.id} ({entry.pattern.text})")
    return EXIT_OK


def cmd_hotlist_local(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist import local_entries
    from edge_agent.hotlist.storage import open_hotlist_db

    config = config_for(args)
    with open_hotlist_db(config.data_dir) as hdb:
        entries = local_entries(hdb)
    for e in entries:
        if args.json:
            console.json(e.to_json())
        else:
            console.print(f"{e.id}\t{e.pattern.text}\t{e.state or '*'}\t{e.list_name}\t{e.entered_by}\t{e.reason}")
    return EXIT_OK


def cmd_hotlist_status(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist.storage import open_hotlist_db

    config = config_for(args)
    with open_hotlist_db(config.data_dir) as hdb:
        versions = [dict(r) for r in hdb.query(
            "SELECT id, kind, source, sha256, rows_loaded, rows_rejected, rows_added, rows_cleared, entries_in_force,"
            " imported_at, imported_by, active, signed_version, signed_by FROM hotlist_versions ORDER BY id DESC LIMIT 20")]
        local = hdb.query("SELECT COUNT(*) FROM local_entries WHERE removed_at IS NULL")[0][0]
    active = next((v for v in versions if v["active"]), None)
    if args.json:
        console.json({"in_force": active, "local_entries": local, "versions": versions})
    elif active is None:
        console.print(f"no hotlist in force; {local} local entries")
    else:
        console.print(f"version {active['id']} in force: {active['entries_in_force']} entries, imported "
                      f"{active['imported_at']} by {active['imported_by']} from {active['source']}"
                      f"{'; signed version ' + str(active['signed_version']) if active['signed_version'] else ''}; "
                      f"{local} local entries")
    return EXIT_OK


def cmd_hotlist_keygen(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist.signing import generate_key

    key, pub = generate_key(Path(args.out), force=args.force)
    console.print(f"private key {key} (keep it at the station); public key {pub} (hotlist.public_key on every unit)")
    return EXIT_OK


def cmd_hotlist_sign(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist import open_hotlist_file
    from edge_agent.hotlist.signing import load_private_key, sign

    config = config_for(args)
    path = Path(args.file)
    stream = open_hotlist_file(path, config.hotlist.layout, config.hotlist.max_file_mb * 1024 * 1024)
    if args.list_version < 1:
        console.error("hotlist sign: --version must be 1 or more")
        return EXIT_USAGE
    envelope = sign(load_private_key(Path(args.key)), stream.sha256, args.list_version, stream.kind, path.name)
    out = Path(args.out) if args.out else path.with_name(path.name + ".sig")
    out.write_text(envelope.to_json() + "\n")
    console.print(f"signed {path} as {stream.kind} version {args.list_version}: {out}")
    return EXIT_OK


def cmd_hotlist_publish(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist.signing import signed_payload
    from edge_agent.sync import Topics

    config = config_for(args, broker=args.broker)
    path = Path(args.file)
    envelope, payload = signed_payload(path, Path(args.signature) if args.signature else path.with_name(path.name + ".sig"))
    topic = Topics.for_unit(config.sync.topic_prefix, config.agent.agency, "-").hotlist
    if not _publish_once(config, topic, payload, args.retain, console):
        return EXIT_FAILED
    console.print(f"published {path} (signed version {envelope.version}, {envelope.kind}) on {topic}")
    return EXIT_OK


def _publish_once(config: Config, topic: str, payload: bytes, retain: bool, console: Console) -> bool:
    """Connect with the configured credentials, publish one message with QoS 1, wait for the broker's PUBACK."""
    from edge_agent.sync import mqtt_client

    s = config.sync
    client, host, port = mqtt_client("", s)
    try:
        client.connect(host, port)
    except OSError as exc:
        console.error(f"broker {s.broker} not reachable: {exc}")
        return False
    client.loop_start()
    info = client.publish(topic, payload, qos=1, retain=retain)
    try:
        info.wait_for_publish(60)
    finally:
        client.loop_stop()
        client.disconnect()
    if not info.is_published():
        console.error(f"the broker {s.broker} did not acknowledge the message on {topic}")
        return False
    return True


def cmd_alerts_list(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access.duties import list_alerts
    from edge_agent.store import Database

    config = config_for(args)
    with Database.for_config(config) as db:
        alerts = list_alerts(db, _session(args, db), args.limit, args.open)
    if args.csv:
        from edge_agent.export import write_csv

        write_csv(console.out, list(alerts[0]) if alerts else ["id"], alerts)
        return EXIT_OK
    for a in alerts:
        if args.json:
            console.json(a)
        else:
            console.print(f"#{a['id']} {a['raised_at']} {a['list']} {a['match']} {a['lic']} {a['lis'] or '-'} "
                          f"read={a['plate_read']} camera={a['camera_id']} "
                          f"disposition={a['disposition'] or 'open'}")
    return EXIT_OK


def cmd_alerts_ack(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access.duties import record_disposition
    from edge_agent.store import Database

    config = config_for(args)
    with Database.for_config(config) as db:
        session = _session(args, db)
        try:
            result = record_disposition(db, session, args.alert_id, args.disposition, args.note)
        except ValueError as exc:
            console.error(f"alerts ack: {exc}")
            return EXIT_USAGE
    if args.json:
        console.json(result)
    else:
        console.print(f"alert {args.alert_id}: {result['disposition']} by {session.user}")
    return EXIT_OK


def _show_result(console: Console, result: dict, as_json: bool) -> None:
    """A benchmark's figures: one JSON object, or key=value pairs on one line."""
    if as_json:
        console.json(result)
    else:
        console.print(" ".join(f"{k}={v}" for k, v in result.items()))


def _measured_on(config) -> dict:
    from edge_agent.bench import machine

    return {**machine(), "providers": list(config.recognition.providers),
            "intra_op_threads": config.recognition.intra_op_threads}


def _serial_formats_note(label: str, first, labelled_state: str | None) -> str:
    """Whether a miss's label and first reading fit the state's serial formats: a label that fits none of
    them where the reading fits one is worth a second look at the image (labels are made by hand)."""
    from edge_agent.recognise.formats import SERIAL_FORMATS, fits_state

    state = labelled_state or (first.state if first else None)
    if SERIAL_FORMATS.get(state or "") is None:
        return ""

    def fit(text: str) -> str:
        return "fits" if fits_state(text, state) else "fits none"

    whose = "" if labelled_state else " (the state read)"
    read = f", the reading {fit(first.text)}" if first else ""
    return f"; {state}{whose} serial formats {' '.join(SERIAL_FORMATS[state])}: the label {fit(label)}{read}"


def cmd_bench_accuracy(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench import bench_accuracy, load_dataset

    items = load_dataset(Path(args.dataset), args.limit, args.part)
    config = config_for(args)
    reader = _reader(config)

    from edge_agent.progress import Progress

    bar = Progress("bench accuracy", len(items), "images", console.err)

    def show(item, plates, ms) -> None:
        bar.update()
        if not args.show_misses:
            return
        first = plates[0] if plates else None
        if (first.text if first else "") != item.plate:
            console.error(f"miss {item.path.name}: label {item.plate}, read {[p.text for p in plates]}"
                          f"{_serial_formats_note(item.plate, first, item.state)}")
        if item.state and (first.state if first else None) != item.state:
            console.error(f"state miss {item.path.name}: label {item.state}, read {(first and first.state) or 'none'}")

    with bar:
        result = {"part": args.part, **bench_accuracy(reader, items, show, args.look), **_measured_on(config)}
    _show_result(console, result, args.json)
    return EXIT_OK


def cmd_bench_false_reads(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench import bench_false_reads, load_dataset

    items = load_dataset(Path(args.dataset), args.limit, args.part)
    result = {"part": args.part, **bench_false_reads(_reader(config_for(args)), items)}
    if args.json:
        console.json(result)
    else:
        for read in result["reads"]:
            console.print(f"{read['image']}: {read['read']}")
        console.print(" ".join(f"{k}={v}" for k, v in result.items() if k != "reads"))
    return EXIT_OK


def cmd_bench_speed(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench.speed import bench_speed, source_frames
    from edge_agent.capture.gate import Region
    from edge_agent.pipeline import tracker_settings

    config = config_for(args)
    region, side_view = Region(), args.side_view
    if args.camera:
        camera = next((c for c in config.cameras if c.id == args.camera), None)
        if camera is None:
            raise EdgeAgentError(f"no camera {args.camera!r} in {config.source_file}")
        region, side_view = Region(*camera.region), side_view or camera.side_view
    from edge_agent.progress import Progress

    def counted(frames, bar):
        for frame in frames:
            bar.update()
            yield frame

    with Progress("bench speed", args.limit or None, "frames", console.err) as bar:
        result = bench_speed(_reader(config), counted(source_frames(args.source, console.error), bar), region,
                             limit=args.limit, tracker_settings=tracker_settings(config), side_view=side_view)
    result.update(_measured_on(config))
    result["side_view"] = side_view
    if args.baseline:
        from edge_agent.bench.generic import time_generic_ocr

        generic = time_generic_ocr(args.source, args.limit)
        result["generic_median_ms"] = generic["median_ms"]
        result["generic_p95_ms"] = generic["p95_ms"]
        result["generic_cpu_s_per_frame"] = generic["cpu_s_per_frame"]
        result["speedup_over_generic"] = round(generic["median_ms"] / max(result["median_ms"], 1e-6), 2)
    _show_result(console, result, args.json)
    return EXIT_OK


def cmd_bench_hotlist(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench.hotlist import bench_hotlist

    config = config_for(args)
    result = bench_hotlist(Path(args.list), config, args.plates, args.seed, progress=console.error)
    _show_result(console, result, args.json)
    return EXIT_OK


def cmd_bench_sync(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench.sync import bench_drain, bench_faults

    work = Path(args.work) if args.work else None
    if args.faults:
        result = bench_faults(args.reads, args.faults, args.seed, work, progress=console.error, tls=args.tls)
        _show_result(console, result, args.json)
        return EXIT_OK if result["exactly_once"] else EXIT_FAILED
    result = bench_drain(args.reads, args.batch_size, args.in_flight, work, progress=console.error, tls=args.tls)
    _show_result(console, result, args.json)
    return EXIT_OK if result["station_count_exact"] else EXIT_FAILED


def cmd_bench_storage(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench.sync import bench_offline_week

    result = bench_offline_week(args.reads, args.cap_mb, Path(args.work) if args.work else None, progress=console.error)
    _show_result(console, result, args.json)
    return EXIT_OK if result["within_cap"] else EXIT_FAILED


def cmd_bench_audit(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench import machine
    from edge_agent.bench.audit import bench_audit_verify

    result = {**bench_audit_verify(args.records, Path(args.work) if args.work else None), **machine()}
    _show_result(console, result, args.json)
    return EXIT_OK if result["met"] else EXIT_FAILED


def cmd_bench_search(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench import machine
    from edge_agent.bench.search import bench_search

    result = {**bench_search(args.reads, work=Path(args.work) if args.work else None), **machine()}
    _show_result(console, result, args.json)
    return EXIT_OK if result["met"] else EXIT_FAILED


def cmd_bench_fleet(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench import machine
    from edge_agent.bench.fleet import bench_fleet

    result = {**bench_fleet(args.reads, args.ingested, args.units, args.db, progress=console.error), **machine()}
    _show_result(console, result, args.json)
    return EXIT_OK if result["met"] else EXIT_FAILED


def cmd_bench_restart(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench import machine
    from edge_agent.bench.restart import bench_restart

    result = {**bench_restart(), **machine()}
    _show_result(console, result, args.json)
    return EXIT_OK if result["met"] else EXIT_FAILED


def cmd_bench_screen(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench.screen import bench_screen

    result = bench_screen(args.seconds, args.rate, args.hits_every, args.idle_seconds,
                          Path(args.work) if args.work else None, progress=console.error)
    result["measured_on"] = _measured_on(config_for(args))
    _show_result(console, result, args.json)
    return EXIT_OK if result["targets_met"] else EXIT_FAILED


def cmd_bench_soak(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.bench.soak import bench_soak

    result = bench_soak(args.minutes, args.warmup_minutes, work=Path(args.work) if args.work else None,
                        progress=console.error)
    result["measured_on"] = _measured_on(config_for(args))
    if args.json:
        console.json(result)
    else:
        console.print(" ".join(f"{k}={v}" for k, v in result.items() if k not in ("samples", "measured_on")))
    return EXIT_OK if result["memory_ok"] and result["no_growth"] and result["every_pass_once"] else EXIT_FAILED


def cmd_stats(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.store import Database
    from edge_agent.store.outbox import outbox_stats
    from edge_agent.store.retention import storage_summary

    config = config_for(args)
    with Database.for_config(config) as db:
        stats = db.stats().to_json()
        stats["waiting_other"] = outbox_stats(db)
        stats["storage"] = storage_summary(db, config.storage.cap_mb)
        stats["yearly"] = {str(y): c for y, c in db.yearly_counts().items()}
    if args.json:
        console.json(stats)
    else:
        w = stats["waiting_other"]
        console.print(f"reads={stats['reads']} sent={stats['sent']} waiting={stats['waiting']} hits={stats['hits']}"
                      f" alerts_waiting={w['alerts']} scene_images_waiting={w['scene_images']}"
                      f" storage={stats['storage']['on_disk_mb']}MB")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.store import Database
    from edge_agent.store.outbox import outbox_stats
    from edge_agent.sync import MqttSync, SyncBusy

    config = config_for(args, broker=args.broker)
    if not args.once:
        console.error("sync: give --once (drain what waits, then exit), or a subcommand")
        return EXIT_USAGE
    if not config.sync.broker:
        raise ConfigError(config.source_file, "sync.broker", "no broker configured (give --broker mqtt://host:port)")
    with Database.for_config(config) as db:
        try:
            sync = MqttSync(config, db)
        except SyncBusy as exc:
            console.error(f"sync: {exc}")
            return EXIT_FAILED
        sync.start()
        try:
            deadline = time.monotonic() + args.timeout
            # a refused connection or a TLS failure is known at once: no need to wait out the timeout
            while not sync.connected.wait(0.05) and not sync.last_error and time.monotonic() < deadline:
                pass
            if not sync.connected.is_set():
                why = f": {sync.last_error}" if sync.last_error else ""
                console.error(f"broker {config.sync.broker} not reachable within {args.timeout:g} s{why}; records stay waiting")
                return EXIT_FAILED
            from edge_agent.progress import Progress
            from edge_agent.store.outbox import outbox_stats as waiting_now

            other_waiting = waiting_now(db)
            total = db.stats().waiting + sum(other_waiting[k] for k in ("alerts", "dispositions", "audit", "scene_images"))
            with Progress(f"sync to {config.sync.broker}", total or None, "records", console.err) as bar:
                result = sync.drain(timeout=args.drain_timeout, reconnect_wait=args.timeout, on_acknowledged=bar.update)
        finally:
            sync.stop()
        waiting = db.stats().waiting
        other = outbox_stats(db)
    summary = {"sent": result.sent, "batches": result.batches, "batches_refused": result.batches_refused,
               "acks_refused": result.acks_refused, "link_lost": result.disconnected, "reads_waiting": waiting,
               "waiting": other}
    if args.json:
        console.json(summary)
    else:
        console.print(f"sent {result.reads} reads"
                      + "".join(f", {n} {k}" for k, n in result.sent.items() if k != "reads")
                      + f"; {waiting} reads waiting")
    if result.disconnected:
        console.error(f"the link to {config.sync.broker} dropped and did not come back within {args.timeout:g} s")
    if result.batches_refused:
        console.error(f"the station refused {result.batches_refused} batches; their records wait (see the station's log)")
    return EXIT_OK if waiting == 0 and not result.batches_refused else EXIT_FAILED


def cmd_sync_keygen(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.hotlist.signing import generate_key

    config = config_for(args)
    key, pub = generate_key(Path(args.out), config.agent.unit_id, force=args.force)
    console.print(f"private key {key} (sync.signing_key on unit {config.agent.unit_id}); "
                  f"public key {pub} (into the station's station.unit_keys folder)")
    return EXIT_OK


def cmd_purge(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.store import Database
    from edge_agent.store.retention import purge_expired

    config = config_for(args)
    if config.storage.retention_days <= 0:
        console.error("purge: storage.retention_days is 0, so reads are kept; nothing purged")
        return EXIT_USAGE
    from edge_agent.clock import BUILT, TrustedClock

    if not TrustedClock().sane():
        console.error(f"purge: the system clock reads before {BUILT:%Y-%m-%d}, so it is not set; nothing purged "
                      "(set the time, or let the agent take it from GPS)")
        return EXIT_FAILED
    with Database.for_config(config) as db:
        purged = purge_expired(db, config.storage.retention_days, by=args.user or default_user(),
                               scene_retention_days=config.storage.scene_retention_days,
                               hit_retention_days=config.storage.hit_retention_days,
                               audit_retention_days=config.storage.audit_retention_days)
        held = db.evidence_held()
    if args.json:
        console.json({"purged": purged, "evidence_hold": held, "retention_days": config.storage.retention_days})
    else:
        console.print(f"purged {purged} sent reads older than {config.storage.retention_days:g} days; "
                      f"{held} reads on evidence hold kept")
    return EXIT_OK


def _station_config(args: argparse.Namespace) -> Config:
    import dataclasses

    config = config_for(args, broker=getattr(args, "broker", None))
    station = config.station
    if getattr(args, "db", None):
        station = dataclasses.replace(station, database=args.db)
    if getattr(args, "hotlist", None):
        station = dataclasses.replace(station, hotlist=Path(args.hotlist))
    return dataclasses.replace(config, station=station)


def cmd_station(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.station import Station, station_database, station_store

    config = _station_config(args)
    if not config.sync.broker:
        raise ConfigError(config.source_file, "sync.broker", "no broker configured (give --broker mqtt://host:port)")
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    with station_store(config) as store:
        station = Station(config, store, out=console.print, name=args.name)
        station.start()
        console.print(f"station {station.name}: receiving from {config.sync.broker} into {station_database(config)}")
        stop.wait()
        station.stop()
    console.print(f"station {station.name}: {station.received} batches stored, {station.refused} refused")
    return EXIT_OK


def _existing_station_store(args: argparse.Namespace):
    from edge_agent.station import station_database
    from edge_agent.station.store import StationStore

    config = _station_config(args)
    target = station_database(config)
    if not target.startswith(("postgresql://", "postgres://")) and not Path(target).is_file():
        # a mistyped data directory must not quietly become an empty station database
        raise ConfigError(config.source_file, "station.database",
                          f"no station database at {target} (check --data-dir, --db or station.database)")
    return StationStore(target, config.agent.time_zone)


def cmd_station_sharing_add(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.station import station_store
    from edge_agent.station.sharing import check_entry

    entry = check_entry(args.agency_name, args.jurisdiction, args.direction, args.data, args.requester, args.purpose,
                        args.approved_by, args.approved_on, Path(args.request_file))
    entry["recorded_by"] = args.user or default_user()
    with station_store(_station_config(args)) as store:
        n = store.add_sharing(entry)
    console.print(f"sharing register entry {n}: {entry['direction']} {entry['data']} with {entry['agency_name']}, "
                  f"approved by {entry['approved_by']} on {entry['approved_on']}")
    return EXIT_OK


def cmd_station_sharing_list(args: argparse.Namespace, console: Console) -> int:
    with _existing_station_store(args) as store:
        entries = store.sharing()
    if args.json:
        console.json(entries)
    else:
        for e in entries:
            console.print(f"{e['id']}: {e['direction']} {e['data']} {'with' if e['direction'] == 'share' else 'from'} "
                          f"{e['agency_name']} ({e['jurisdiction']}); requested by {e['requester']} for {e['purpose']}; "
                          f"approved by {e['approved_by']} on {e['approved_on']}")
        if not entries:
            console.print("the sharing register is empty: no agency shares or receives")
    return EXIT_OK


def cmd_station_units(args: argparse.Namespace, console: Console) -> int:
    with _existing_station_store(args) as store:
        units = store.units()
    if args.json:
        console.json(units)
        return EXIT_OK
    for u in units:
        skew = "-" if u["clock_skew_s"] is None else f"{u['clock_skew_s']:+.0f} s"
        console.print(f"{u['agency']}/{u['unit']}: {u['state']}, last contact {u['last_contact']}, clock {skew}"
                      f"{' (' + u['clock'] + ')' if u['clock'] and u['clock'] != 'system' else ''}, "
                      f"software {u['version'] or '-'}, hotlist {u['hotlist_version'] or '-'}, "
                      f"{u['waiting'] if u['waiting'] is not None else '-'} waiting, "
                      f"certificate until {(u['certificate_expires'] or '-')[:10]}")
    if not units:
        console.print("no unit has reported yet")
    return EXIT_OK


def cmd_station_stats(args: argparse.Namespace, console: Console) -> int:
    with _existing_station_store(args) as store:
        stats = store.stats()
    if args.json:
        console.json(stats)
    else:
        console.print(" ".join(f"{k}={v}" for k, v in stats.items() if k != "by_unit"))
        for u in stats["by_unit"]:
            console.print(f"  {u['agency']}/{u['unit']}: {u['reads']} reads, {u['state'] or '-'} at {u['last_seen']}")
    return EXIT_OK


def _password(prompt: str) -> str:
    return os.environ.get("EDGE_AGENT_PASSWORD") or getpass.getpass(prompt)


def _session(args: argparse.Namespace, db):
    from edge_agent.access import login

    config = config_for(args)
    return login(db, args.user, _password(f"password for {args.user}: "), args.purpose, config.agent.unit_id)


def _when(text: str | None, what: str):
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise EdgeAgentError(f"{what} {text!r}: not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plate", help="7ABC123, 7AB*, 7?BC123 ...")
    parser.add_argument("--tolerant", action="store_true", help="also plates that differ by an O/0, I/1, B/8 ... confusion")
    parser.add_argument("--since", help="UTC date or time (2026-11-01, 2026-11-01T08:00)")
    parser.add_argument("--until", help="UTC date or time, exclusive")
    parser.add_argument("--near", metavar="LAT,LON,KM", help="within KM of a place (reads with a GPS fix)")


def _read_query(args: argparse.Namespace):
    from edge_agent.access import ReadQuery

    near = None
    if args.near:
        try:
            lat, lon, km = (float(v) for v in args.near.split(","))
        except ValueError:
            raise EdgeAgentError(f"--near {args.near!r}: give LAT,LON,KM (38.5757,-121.4788,2)") from None
        near = (lat, lon, km)
    return ReadQuery(args.plate, _when(args.since, "--since"), _when(args.until, "--until"), near, args.tolerant)


def _show_reads(console: Console, rows: list[dict], query, as_json: bool) -> None:
    if as_json:
        console.json(rows)
        return
    for r in rows:
        where = f"{r['lat']:.5f},{r['lon']:.5f}" if r["lat"] is not None else "no fix"
        unit = f"{r['unit']:<8} " if "unit" in r else ""
        console.print(f"{r['captured_at']}  {unit}{r['plate']:<9} {r['state'] or '--'}  {r['camera_id']:<8} {where}"
                      f"{'  HIT' if r['hit_count'] else ''}{'  EVIDENCE' if r['evidence_hold'] else ''}")
    console.print(f"{len(rows)} reads ({query.describe()}); this search is in the audit log")


def cmd_search(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import search_reads
    from edge_agent.store import Database

    query = _read_query(args)
    with Database.for_config(config_for(args)) as db:
        rows = search_reads(db, _session(args, db), query)
    _show_reads(console, rows, query, args.json)
    return EXIT_OK


def cmd_station_search(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.station.access import station_login, station_search

    agency = _station_config(args).agent.agency
    query = _read_query(args)
    with _existing_station_store(args) as store:
        session = station_login(store, agency, args.user, _password(f"password for {args.user}: "), args.purpose)
        rows = station_search(store, agency, session, query)
    _show_reads(console, rows, query, args.json)
    return EXIT_OK


def cmd_station_plates_list(args: argparse.Namespace, console: Console) -> int:
    from datetime import date

    from edge_agent.station.access import station_login, station_plates

    agency = _station_config(args).agent.agency
    with _existing_station_store(args) as store:
        session = station_login(store, agency, args.user, _password(f"password for {args.user}: "), args.purpose)
        plates = station_plates(store, agency, session, date.today().isoformat())
    if args.json:
        console.json({"plates": plates})
        return EXIT_OK
    for p in plates:
        console.print(f"{p['uuid']}  {p['plate']:<10} {p['state'] or '*':<3} {p['list']:<15} {p['unit']:<12}"
                      f" {p['entered_by']:<12} {'fleet' if p['shared_by'] else 'unit '} {p['reason']}")
    console.print(f"{len(plates)} officers' plates in force; {sum(1 for p in plates if p['shared_by'])} passed to the fleet")
    return EXIT_OK


def cmd_station_plates_share(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.station.access import share_plate, station_login

    agency = _station_config(args).agent.agency
    with _existing_station_store(args) as store:
        session = station_login(store, agency, args.user, _password(f"password for {args.user}: "), args.purpose)
        result = share_plate(store, agency, session, args.uuid, args.share)
    console.print(f"{result['plate']} ({result['list']}, from {result['unit']}) "
                  + ("goes to every unit with the station's next poll" if result["shared"] else
                     "is no longer passed to the fleet; units drop it with the station's next poll"))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import ReadQuery, export_reads
    from edge_agent.store import Database

    query = ReadQuery(args.plate, _when(args.since, "--since"), _when(args.until, "--until"), None, args.tolerant)
    with Database.for_config(config_for(args)) as db:
        manifest = export_reads(db, _session(args, db), query, Path(args.out),
                                redact_with=_reader(config_for(args)) if args.redacted else None)
    console.print(f"exported {manifest['reads']} reads ({len(manifest['files'])} files) to {args.out}; "
                  "they are on evidence hold; manifest.json lists each file's sha256")
    return EXIT_OK


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    from edge_agent.report import FORMATS

    parser.add_argument("--year", type=int, required=True, help="the agency's year (agent.time_zone)")
    parser.add_argument("--format", choices=FORMATS, default=None, help="text (default), json, csv, html or pdf")
    parser.add_argument("--json", action="store_true", help="--format json")
    parser.add_argument("--csv", action="store_true", help="--format csv")
    parser.add_argument("--out", metavar="FILE", help="write the report here (needed for pdf)")


def _emit_report(args: argparse.Namespace, console: Console, report: dict, agency: str) -> int:
    from edge_agent.report import write_report

    fmt = args.format or ("json" if args.json else "csv" if args.csv else "text")
    if fmt == "pdf" and not args.out:
        console.error("report: --format pdf needs --out FILE")
        return EXIT_USAGE
    out = Path(args.out) if args.out else None
    try:
        text = write_report(report, agency, fmt, out)
    except OSError as exc:
        raise EdgeAgentError(f"{args.out}: cannot write the report: {exc.strerror or exc}") from None
    if text is not None:
        console.print(text.rstrip("\n"))
    else:
        console.print(f"wrote the {fmt} report to {out}")
    return EXIT_OK


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import yearly_report
    from edge_agent.store import Database

    config = config_for(args)
    with Database.for_config(config) as db:
        report = yearly_report(db, _session(args, db), args.year)
    return _emit_report(args, console, report, config.agent.agency)


def cmd_station_purge(args: argparse.Namespace, console: Console) -> int:
    config = _station_config(args)
    days = config.station.retention_days
    if days <= 0:
        console.error("station purge: station.retention_days is 0, so reads are kept; nothing purged")
        return EXIT_USAGE
    with _existing_station_store(args) as store:
        purged = store.purge(days, config.agent.agency, args.user or default_user())
    if args.json:
        console.json({"purged": purged, "retention_days": days})
    else:
        console.print(f"purged {purged} reads captured more than {days:g} days ago; reads on evidence hold kept")
    return EXIT_OK


def cmd_station_audit_verify(args: argparse.Namespace, console: Console) -> int:
    with _existing_station_store(args) as store:
        chains = store.audit_chains()
    if args.json:
        console.json(chains)
    for c in chains if not args.json else ():
        state = "intact" if c["ok"] else f"BROKEN: {c['why']}"
        console.print(f"{c['agency']}/{c['unit']}: {state}; {c['records']} records, {c['first_seq']}-{c['last_seq']}"
                      + (f", {c['gaps']} gaps (records not received yet)" if c["gaps"] else ""))
    if not chains and not args.json:
        console.print("no unit has sent its audit chain yet")
    return EXIT_OK if all(c["ok"] for c in chains) else EXIT_FAILED


def cmd_station_report(args: argparse.Namespace, console: Console) -> int:
    with _existing_station_store(args) as store:
        report = store.yearly_report(args.year)
    return _emit_report(args, console, report, _station_config(args).agent.agency)


def cmd_policy(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.policy import policy_html

    page = policy_html(config_for(args), args.agency_name)
    if args.out:
        Path(args.out).write_text(page, encoding="utf-8")
        console.print(f"wrote {args.out}")
    else:
        console.print(page.rstrip("\n"))
    return EXIT_OK


def _user_arguments(parser: argparse.ArgumentParser) -> None:
    from edge_agent.access import ROLES

    parser.add_argument("--role", required=True, choices=ROLES)
    parser.add_argument("--trained-on", required=True, type=_date_argument,
                        help="date the department-approved training was completed (YYYY-MM-DD)")
    parser.add_argument("--valid-days", type=int, default=365, help="how long the training counts")
    parser.add_argument("--designee", action="store_true", help="the ALPR administrator designee")


def _date_argument(text: str):
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _new_password(name: str) -> str:
    return os.environ.get("EDGE_AGENT_NEW_PASSWORD") or getpass.getpass(f"new password for {name}: ")


def _roster_admin(args: argparse.Namespace, store, agency: str):
    from edge_agent.station.access import station_login

    if not args.admin:
        return None
    return station_login(store, agency, args.admin, _password(f"password for {args.admin}: "),
                         f"roster: {args.station_users_command} {args.name}")


def cmd_station_users_add(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import new_user
    from edge_agent.station import station_store
    from edge_agent.station.access import change_roster

    config = _station_config(args)
    agency = config.agent.agency
    with station_store(config) as store:
        admin = _roster_admin(args, store, agency)
        user = new_user(args.name, args.role, _new_password(args.name), args.trained_on, args.valid_days, args.designee)
        version = change_roster(store, agency, admin, user, "roster.put")
    console.print(f"user {args.name} is {args.role} on every unit, training valid until {user['training_expires']};"
                  f" roster version {version} goes to the fleet with the station's next poll")
    return EXIT_OK


def cmd_station_users_deactivate(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.station.access import change_roster

    agency = _station_config(args).agent.agency
    with _existing_station_store(args) as store:
        admin = _roster_admin(args, store, agency)
        _, users = store.roster()
        found = [u for u in users if u["name"] == args.name]
        if not found:
            console.error(f"station users: there is no user {args.name!r} in the roster")
            return EXIT_FAILED
        version = change_roster(store, agency, admin, {**found[0], "active": False}, "roster.deactivate")
    console.print(f"user {args.name} deactivated; roster version {version} takes the access away on every unit")
    return EXIT_OK


def cmd_station_users_list(args: argparse.Namespace, console: Console) -> int:
    with _existing_station_store(args) as store:
        version, users = store.roster()
    shown = [{k: v for k, v in u.items() if k != "password_hash"} for u in users]
    if args.json:
        console.json({"version": version, "users": shown})
        return EXIT_OK
    console.print(f"roster version {version}")
    for u in shown:
        console.print(f"{u['name']:<16} {u['role']:<13} trained {u['trained_on']} until {u['training_expires']}"
                      f"{'  designee' if u['designee'] else ''}{'' if u['active'] else '  inactive'}")
    return EXIT_OK


def cmd_users_add(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import add_user, login
    from edge_agent.store import Database

    trained = args.trained_on
    config = config_for(args)
    with Database.for_config(config) as db:
        by = None
        if args.admin:
            by = login(db, args.admin, _password(f"password for {args.admin}: "), f"add user {args.name}",
                       config.agent.unit_id)
        add_user(db, by, args.name, args.role, _new_password(args.name), trained, args.valid_days, args.designee)
    console.print(f"user {args.name} added as {args.role}; training valid until {trained + timedelta(days=args.valid_days)}")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import list_users
    from edge_agent.store import Database

    with Database.for_config(config_for(args)) as db:
        users = list_users(db, _session(args, db))
    if args.json:
        console.json(users)
    else:
        for u in users:
            console.print(f"{u['name']:<16} {u['role']:<13} trained {u['trained_on']} until {u['training_expires']}"
                          f"{'  designee' if u['designee'] else ''}{'' if u['active'] else '  inactive'}")
    return EXIT_OK


def cmd_audit_verify(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access.audit import verify
    from edge_agent.store import Database

    with Database.for_config(config_for(args)) as db:
        with db._lock:
            started = time.perf_counter()
            verdict = verify(db._conn)
            seconds = time.perf_counter() - started
    if args.json:
        console.json({**verdict.to_json(), "seconds": round(seconds, 2)})
    elif verdict.ok:
        console.print(f"audit log intact: {verdict.records} records chained ({seconds:.1f} s); last hash {verdict.last_hash}")
        if verdict.checkpoint is not None:
            console.print(f"older records were dropped behind checkpoint {verdict.checkpoint[0]} {verdict.checkpoint[1]};"
                          " the station holds them (edge-agent station audit verify)")
    else:
        console.error(f"audit log BROKEN: {verdict.why}; {verdict.records} records before it are intact")
    return EXIT_OK if verdict.ok else EXIT_FAILED


def cmd_audit_search(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.access import search_audit
    from edge_agent.store import Database

    if not args.plate and not args.by:
        raise EdgeAgentError("audit search: give --plate PLATE or --by USER")
    with Database.for_config(config_for(args)) as db:
        rows = search_audit(db, _session(args, db), plate=args.plate, user=args.by)
    if args.json:
        console.json(rows)
    else:
        for r in rows:
            console.print(f"{r['at']}  {r['user']:<14} {r['action']:<16} {r['query']}  purpose: {r['purpose'] or '-'}"
                          + (f"  ({r['records']} records)" if r["records"] is not None else ""))
    return EXIT_OK


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.service import read_status, runtime_folder, status_line

    config = config_for(args)
    status, why = read_status(runtime_folder(config.data_dir))
    if status is None:
        console.error(f"status: {why}")
        return EXIT_FAILED
    if args.json:
        console.json(status)
        return EXIT_OK
    console.print(f"{status['agency']}/{status['unit']} edge-agent {status['version']}, up {status['up_s'] / 60:.0f} min: "
                  f"{status_line(status)}")
    for c in status["cameras"]:
        detail = f"{c['fps']:.1f} fps, {c['frames']} frames" if c["state"] == "ok" else c["problem"] or c["state"]
        console.print(f"  camera {c['id']}: {c['state']}: {detail}")
    sync, hot, disk = status["sync"], status["hotlist"], status["disk"]
    console.print(f"  sync: {'connected to ' + sync['broker'] if sync['connected'] else 'not connected' if sync['broker'] else 'no broker'}"
                  f", {status['waiting']} reads waiting, oldest {sync['lag_s'] / 60:.0f} min")
    age = "none loaded" if hot["age_s"] is None else f"{hot['age_s'] / 3600:.1f} h old"
    console.print(f"  hotlist: version {hot['version']}, {hot['entries']} entries, {age}")
    console.print(f"  disk: {disk['free_mb']} MB free; storage {status['storage']['storage']}; clock {status['clock']}"
                  + (f"; CPU {status['cpu_temp_c']:.0f} C" if status["cpu_temp_c"] is not None else ""))
    if status["gps"] is not None:
        g = status["gps"]
        console.print(f"  gps {g['port']}: {g['state']}" + (f" ({g['problem']})" if g["problem"] else ""))
    if status.get("screen"):
        console.print(f"  screen: {status['screen']}")
    for problem in status["health"]:
        console.print(f"  problem: {problem}")
    return EXIT_OK


def cmd_selftest(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.selftest import FAIL, run_selftest, summary

    config = config_for(args)
    checks = run_selftest(config)
    if args.json:
        console.json({"checks": [c.to_json() for c in checks], "summary": summary(checks)})
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            console.print(f"{c.result}  {c.name:<{width}}  {c.detail}")
        console.print(summary(checks))
    return EXIT_FAILED if any(c.result == FAIL for c in checks) else EXIT_OK


def cmd_config_check(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.config import config_problems, find_config, load_config
    from edge_agent.tomlcompat import tomllib

    found = find_config(args.file or getattr(args, "config", None))
    if found is None:
        console.print("no configuration file: the built-in defaults are in force")
        return EXIT_OK
    try:
        load_config(found)
        console.print(f"{found}: ok")
        return EXIT_OK
    except ConfigError as first:
        try:
            raw = tomllib.loads(Path(found).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            console.error(str(first))  # unreadable as a whole: the one message says why
            return EXIT_USAGE
    problems = config_problems(raw, str(found), Path(found).resolve().parent)
    for problem in problems:
        console.error(str(problem))
    console.error(f"{found}: {len(problems)} problem{'s' if len(problems) != 1 else ''}")
    return EXIT_USAGE


def _authority(args: argparse.Namespace):
    from edge_agent.pki import Authority

    config = config_for(args)
    return config, Authority(Path(args.dir) if args.dir else config.data_dir / "pki")


def cmd_pki_init(args: argparse.Namespace, console: Console) -> int:
    config, authority = _authority(args)
    ca = authority.init(config.agent.agency, config.sync.topic_prefix, force=args.force)
    console.print(f"agency {config.agent.agency}: CA {ca}, CRL {authority.crl_path}, broker ACL {authority.acl_path}")
    return EXIT_OK


def cmd_pki_issue(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.pki import LEAF_DAYS

    _, authority = _authority(args)
    key, cert = authority.issue(args.role, args.name, args.days or LEAF_DAYS, tuple(args.host), force=args.force)
    console.print(f"{args.role} {args.name}: key {key} (0600; carry it to the {args.role} and delete it here), "
                  f"certificate {cert}, CA {cert.parent / 'ca.crt'}; broker ACL {authority.acl_path} updated")
    return EXIT_OK


def cmd_pki_renew(args: argparse.Namespace, console: Console) -> int:
    from edge_agent.pki import LEAF_DAYS

    _, authority = _authority(args)
    cert = authority.renew(args.role, args.name, args.days or LEAF_DAYS)
    console.print(f"{args.role} {args.name}: new certificate {cert} for the same key")
    return EXIT_OK


def cmd_pki_revoke(args: argparse.Namespace, console: Console) -> int:
    _, authority = _authority(args)
    serials = authority.revoke(args.role, args.name)
    console.print(f"{args.role} {args.name}: revoked {', '.join(serials)}. Copy {authority.crl_path} and "
                  f"{authority.acl_path} to the broker; `systemctl reload mosquitto` takes its topics away now, "
                  f"`systemctl restart mosquitto` makes the broker refuse the certificate (it reads the CRL at start)")
    return EXIT_OK


def cmd_pki_list(args: argparse.Namespace, console: Console) -> int:
    import dataclasses

    from edge_agent.pki import expiry_warnings

    _, authority = _authority(args)
    rows = authority.issued()
    if args.json:
        console.json([dataclasses.asdict(r) for r in rows])
    else:
        for r in rows:
            console.print(f"{r.role:8} {r.name:20} serial {r.serial[:16]} expires {r.not_after[:10]}"
                          f"{'  REVOKED ' + r.revoked_at[:10] if r.revoked_at else ''}")
    current = [authority.folder / r.role / f"{r.name}.crt" for r in rows if not r.revoked_at]
    for warning in expiry_warnings([authority.ca_cert_path, *dict.fromkeys(current)]):
        console.error(warning)
    return EXIT_OK


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
