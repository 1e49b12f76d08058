"""The figures public-records requests ask for: detections, hits by list, dispositions, searches by purpose,
exports and purges, by the agency's year and month.

They are counts kept when things happen (a read stored, a disposition recorded, an access audited), in the
same transaction, on the unit and at the station, so purging the records behind them changes none of them.
What is counted for a record is decided here, once, for both: `read_metrics`, `disposition_metrics` and
`audit_metrics`. `yearly_figures` turns a year's counts into the report, and `chart_series` is the one
place the report's charts take their numbers from.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, tzinfo
from typing import Iterable

DETECTION_MEANS = "one stored read: one vehicle pass seen by one camera"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
BEFORE_MONTHS = 0  # counts kept before monthly figures were (unit schema 7): in the year, in no month
PURPOSE_CHARS = 60


def month_of(at: datetime, zone: tzinfo) -> tuple[int, int]:
    """The agency's (year, month) of a time."""
    local = at.astimezone(zone)
    return local.year, local.month


def read_metrics(hit_lists: Iterable[str]) -> list[str]:
    """What one stored read counts for: a detection, and a hit (once, and once for each list it was on)."""
    lists = sorted(set(hit_lists))
    return ["detections"] + (["hits"] + [f"hits:{name}" for name in lists] if lists else [])


def disposition_metrics(disposition: str) -> list[str]:
    return [f"dispositions:{disposition}"]


def audit_metrics(action: str, purpose: str) -> list[str]:
    """What one audit record counts for: searches by purpose, exports and purges; other accesses nothing."""
    if action == "search":
        return ["searches", f"searches:{' '.join(purpose.split()).lower()[:PURPOSE_CHARS]}"]
    if action == "export":
        return ["exports"]
    if action == "retention.purge":
        return ["purges"]
    return []


def tally(metrics: Iterable[tuple[tuple[int, int], list[str]]]) -> Counter:
    """{(year, month, metric): n} of many records' ((year, month), metrics)."""
    out: Counter = Counter()
    for (year, month), names in metrics:
        for name in names:
            out[(year, month, name)] += 1
    return out


def yearly_figures(year: int, time_zone: str, counts: Iterable[tuple[int, str, int]], **scope) -> dict:
    """The year's report from its counts, (month, metric, n) rows; `scope` says whose figures they are."""
    total: Counter = Counter()
    monthly: dict[int, Counter] = {m: Counter() for m in range(1, 13)}
    for month, metric, n in counts:
        total[metric] += n
        if month in monthly:
            monthly[month][metric] += n
    by = lambda prefix: {k.split(":", 1)[1]: v for k, v in sorted(total.items()) if k.startswith(prefix + ":")}  # noqa: E731
    months = [{"month": m, "name": MONTHS[m - 1], "detections": monthly[m]["detections"], "hits": monthly[m]["hits"],
               "hit_ratio": _ratio(monthly[m]["hits"], monthly[m]["detections"])} for m in range(1, 13)]
    report = {
        "year": year, "time_zone": time_zone, **scope,
        "detections": total["detections"], "hits": total["hits"], "hit_ratio": _ratio(total["hits"], total["detections"]),
        "hits_by_list": by("hits"), "dispositions": by("dispositions"),
        "searches": total["searches"], "searches_by_purpose": by("searches"), "exports": total["exports"],
        "purges": total["purges"], "reads_purged": total["purged"], "scene_images_purged": total["scene_images_purged"],
        "months": months,
        "detection_means": DETECTION_MEANS,
    }
    unplaced = total["detections"] - sum(m["detections"] for m in months)
    if unplaced:
        report["detections_in_no_month"] = unplaced  # counted before monthly figures were kept
    return report


def _ratio(hits: int, detections: int) -> float:
    return round(hits / detections, 6) if detections else 0.0


def chart_series(report: dict) -> dict[str, list]:
    """The numbers the printed report's charts draw, from the report itself: month names, detections, hits
    and the hit ratio per month (a test holds them to the JSON)."""
    months = report["months"]
    return {"months": [m["name"] for m in months], "detections": [m["detections"] for m in months],
            "hits": [m["hits"] for m in months], "hit_ratio": [m["hit_ratio"] for m in months]}
