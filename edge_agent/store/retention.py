"""Keeping the unit's database inside its storage cap, and purging reads past the retention period.

When the database outgrows its cap, records are given up in a fixed order, the
cheapest loss first:

1. scene images of reads the station already holds, oldest first;
2. scene images of reads not yet sent that hit no list;
3. reads the station already holds that hit no list (their plate image with them);
4. plate images of reads not yet sent that hit no list.

A read on evidence hold is never touched, and neither is a read that hit a list
and has not reached the station, nor its plate image. Every step taken is
written to `storage_events`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from edge_agent.figures import audit_metrics
from edge_agent.store import Database, utc_iso

CHUNK = 500

# (what is given up, SELECT of the read ids to give it up for, DELETE/UPDATE statements taking those ids)
SACRIFICE_ORDER: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "scene images of sent reads",
        "SELECT r.id FROM reads r JOIN read_images i ON i.read_id = r.id AND i.kind = 'scene'"
        " WHERE r.sent_at IS NOT NULL AND r.evidence_hold = 0 ORDER BY r.captured_at LIMIT ?",
        ("DELETE FROM read_images WHERE kind = 'scene' AND read_id = ?",
         "UPDATE reads SET scene_pending = 0 WHERE id = ?"),
    ),
    (
        "scene images of unsent reads without hits",
        "SELECT r.id FROM reads r JOIN read_images i ON i.read_id = r.id AND i.kind = 'scene'"
        " WHERE r.sent_at IS NULL AND r.hit_count = 0 AND r.evidence_hold = 0 ORDER BY r.captured_at LIMIT ?",
        ("DELETE FROM read_images WHERE kind = 'scene' AND read_id = ?",
         "UPDATE reads SET scene_pending = 0 WHERE id = ?"),
    ),
    (
        "sent reads without hits",
        "SELECT id FROM reads WHERE sent_at IS NOT NULL AND hit_count = 0 AND evidence_hold = 0"
        " ORDER BY captured_at LIMIT ?",
        ("DELETE FROM reads WHERE id = ?",),
    ),
    (
        "plate images of unsent reads without hits",
        "SELECT r.id FROM reads r JOIN read_images i ON i.read_id = r.id AND i.kind = 'plate'"
        " WHERE r.sent_at IS NULL AND r.hit_count = 0 AND r.evidence_hold = 0 ORDER BY r.captured_at LIMIT ?",
        ("DELETE FROM read_images WHERE kind = 'plate' AND read_id = ?",),
    ),
)


@dataclass(frozen=True)
class CapPolicy:
    """Start giving records up above `high` bytes in use; stop once under `low`."""

    cap_bytes: int
    high: int
    low: int
    wal_bytes: int = Database.WAL_LIMIT  # how large the WAL may grow before it is checkpointed and cut back

    @classmethod
    def for_cap(cls, cap_mb: float) -> "CapPolicy":
        cap = int(cap_mb * 1024 * 1024)
        wal = min(Database.WAL_LIMIT, cap // 10)
        # The WAL sits on top of the pages in use, and may pass its limit by one transaction (a read with its
        # scene image): keep room for both, and for the reads stored between two checks.
        room = min(2 * wal + 1024 * 1024, cap // 3)
        high = cap - room
        return cls(cap, high, int(high * 0.95), wal)


@dataclass
class CapResult:
    used_before: int
    used_after: int
    given_up: dict[str, int]
    over_cap: bool  # nothing more may be given up, and the database is still above the cap's high mark


def enforce_cap(db: Database, policy: CapPolicy) -> CapResult:
    """Give records up in SACRIFICE_ORDER until the database is under the policy's low mark (or nothing is left)."""
    before, _ = db.used_bytes()
    used = before
    given_up: dict[str, int] = {}
    if used <= policy.high:
        return CapResult(before, used, given_up, False)
    events = []
    for what, select, actions in SACRIFICE_ORDER:
        if used <= policy.low:
            break
        tier_start = used
        while used > policy.low:
            with db.transaction() as c:
                ids = [(row[0],) for row in c.execute(select, (CHUNK,))]
                for statement in actions:
                    c.executemany(statement, ids)
            if not ids:
                break
            given_up[what] = given_up.get(what, 0) + len(ids)
            used, _ = db.used_bytes()
        if what in given_up:
            events.append((utc_iso(), "cap", given_up[what], tier_start - used, what))
    if events:
        with db.transaction() as c:
            c.executemany("INSERT INTO storage_events (at, action, records, bytes, detail) VALUES (?, ?, ?, ?, ?)",
                          events)
    return CapResult(before, used, given_up, used > policy.high)


def storage_summary(db: Database, cap_mb: float) -> dict:
    """What the database takes, what the cap has given up and retention has purged, what evidence is held."""
    used, on_disk = db.used_bytes()
    given_up = db.query("SELECT detail, SUM(records) AS n FROM storage_events WHERE action = 'cap' GROUP BY detail")
    return {
        "used_mb": round(used / 1048576, 1), "on_disk_mb": round(on_disk / 1048576, 1), "cap_mb": cap_mb or None,
        "given_up": {r["detail"]: r["n"] for r in given_up},
        "purged": db.query("SELECT COALESCE(SUM(records), 0) FROM storage_events WHERE action = 'purge'")[0][0],
        "evidence_hold": db.query("SELECT COUNT(*) FROM reads WHERE evidence_hold = 1")[0][0],
    }


def purge_expired(db: Database, retention_days: float, now: datetime | None = None, by: str = "system:retention",
                  scene_retention_days: float = 0.0, hit_retention_days: float = 0.0,
                  audit_retention_days: float = 0.0) -> int:
    """Delete reads the station holds that are older than the retention period, except those on evidence hold;
    reads that hit a list after `hit_retention_days` instead (0: as the others), and their scene images
    sooner with `scene_retention_days`. With `audit_retention_days`, audit records the station holds go too,
    behind a checkpoint (`access.audit.drop_behind_checkpoint`). Each purge is counted and audited (as `by`).

    A read whose alert or disposition has not reached the station yet is kept until it has. Returns the reads
    purged.
    """
    from edge_agent.access.audit import append, drop_behind_checkpoint

    now = now or datetime.now(timezone.utc)
    cutoff = utc_iso(now - timedelta(days=retention_days))
    hit_cutoff = utc_iso(now - timedelta(days=hit_retention_days)) if hit_retention_days > 0 else cutoff
    with db.transaction() as c:
        purged = c.execute(
            "DELETE FROM reads WHERE captured_at < ? AND (hit_count = 0 OR captured_at < ?) AND sent_at IS NOT NULL"
            " AND evidence_hold = 0"
            " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.read_id = reads.id AND (a.sent_at IS NULL"
            "   OR EXISTS (SELECT 1 FROM dispositions d WHERE d.alert_id = a.id AND d.sent_at IS NULL)))",
            (cutoff, hit_cutoff),
        ).rowcount
        scenes = 0
        if scene_retention_days > 0:
            scene_cutoff = utc_iso(now - timedelta(days=scene_retention_days))
            scenes = c.execute(
                "DELETE FROM read_images WHERE kind = 'scene' AND read_id IN (SELECT id FROM reads WHERE captured_at < ?"
                " AND sent_at IS NOT NULL AND scene_pending = 0 AND evidence_hold = 0 AND hit_count = 0)",
                (scene_cutoff,)).rowcount
        if purged:
            db.count(c, ("purged",), purged, now)
            c.execute("INSERT INTO storage_events (at, action, records, detail) VALUES (?, 'purge', ?, ?)",
                      (utc_iso(), purged, f"reads captured before {cutoff}"
                       + (f" (with hits: before {hit_cutoff})" if hit_cutoff != cutoff else "")))
        if scenes:
            db.count(c, ("scene_images_purged",), scenes, now)
            c.execute("INSERT INTO storage_events (at, action, records, detail) VALUES (?, 'purge', ?, ?)",
                      (utc_iso(), scenes, f"scene images of reads captured before {scene_cutoff}"))
        if purged or scenes or by != "system:retention":
            db.count(c, audit_metrics("retention.purge", "retention schedule"), 1, now)
            append(c, by, "retention.purge", f"{purged} reads older than {retention_days:g} days"
                   + (f", {scenes} scene images older than {scene_retention_days:g} days" if scenes else ""),
                   "retention schedule", "", purged + scenes)
        if audit_retention_days > 0:
            dropped = drop_behind_checkpoint(c, utc_iso(now - timedelta(days=audit_retention_days)), by)
            if dropped:
                db.count(c, ("audit_records_dropped",), dropped, now)
                c.execute("INSERT INTO storage_events (at, action, records, detail) VALUES (?, 'purge', ?, ?)",
                          (utc_iso(), dropped, f"audit records older than {audit_retention_days:g} days, behind a checkpoint"))
    return purged
