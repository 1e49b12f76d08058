"""What the live view is sent: each stored read (and its alert), and the status strip, as server-sent events.

The recognition worker publishes from its own thread; browsers subscribe on the server's event loop. Each
event is serialised once, whoever watches. The newest reads are kept (bounded) so that a browser that
reconnects gets what it missed (Last-Event-ID); a browser too slow to keep up is dropped, and reconnects.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import threading
import time
from dataclasses import dataclass

from edge_agent.alert import CLETS_REMINDER, LIST_WORDS
from edge_agent.records import Read


@dataclass(frozen=True)
class Event:
    id: int
    kind: str  # read | status | locked
    data: str  # JSON

    def wire(self) -> bytes:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n".encode()


def read_event(read: Read, alert, stored_at: float) -> dict:
    """A read as the live view shows it; with its alert (the hit view's words and the list's entry) when it
    raised one. `stored_at` (epoch seconds) lets the page measure how long the hit took to appear."""
    r = read.reading
    out = {
        "read_id": read.id, "at": read.captured_at.isoformat(), "stored_at": round(stored_at * 1000, 1),
        "plate": r.text, "state": r.state, "confidence": round(r.confidence, 3), "camera": read.camera_id,
        "position": read.position.to_json() if read.position else None,
        "crop": "data:image/jpeg;base64," + base64.b64encode(read.plate_jpeg).decode() if read.plate_jpeg else None,
        "hits": [{**h.to_json(), "list_words": LIST_WORDS.get(h.list_name, h.list_name)} for h in read.hits],
    }
    if alert is not None:
        hit = alert.hit
        out["alert"] = {"id": alert.id, "list": hit.list_name, "list_words": LIST_WORDS.get(hit.list_name, hit.list_name),
                        "lic": hit.lic, "lis": hit.lis, "match": hit.match, "source": hit.source,
                        "details": {k: str(v) for k, v in hit.details.items()}, "message": alert.text,
                        "clets": CLETS_REMINDER, "priority": alert.priority, "other_hits": len(alert.hits) - 1}
    return out


class Subscriber:
    """One browser's stream: its queue of events, and whether it fell so far behind that it was dropped."""

    QUEUE = 256

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(self.QUEUE)
        self.dropped = False


class ReadFeed:

    def __init__(self, keep: int = 50):
        self._lock = threading.Lock()
        self._reads: collections.deque[Event] = collections.deque(maxlen=keep)
        self._status: Event | None = None
        self._seq = 0
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish_read(self, read: Read, alert=None, stored_at: float | None = None) -> None:
        self._publish("read", read_event(read, alert, stored_at or time.time()))

    def publish_status(self, status: dict) -> None:
        self._publish("status", status)

    def _publish(self, kind: str, data: dict) -> None:
        with self._lock:
            self._seq += 1
            event = Event(self._seq, kind, json.dumps(data, separators=(",", ":")))
            if kind == "read":
                self._reads.append(event)
            else:
                self._status = event
            self.published += 1
            loop = self._loop
        if loop is not None and self._subscribers:
            try:
                loop.call_soon_threadsafe(self._fan_out, event)
            except RuntimeError:  # the server's loop has closed: nobody is watching
                pass

    def _fan_out(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber.queue.put_nowait(event)
            except asyncio.QueueFull:  # it reconnects, and gets the reads it missed from those kept
                self._subscribers.discard(subscriber)
                subscriber.dropped = True

    def subscribe(self, after: int | None) -> tuple[Subscriber, list[Event]]:
        """A subscriber for new events (on the loop's thread) and what to send it first: the reads kept after
        `after` (all of them for a new browser), then the latest status."""
        subscriber = Subscriber()
        with self._lock:
            backlog = [e for e in self._reads if after is None or e.id > after]
            if self._status is not None:
                backlog.append(self._status)
            self._subscribers.add(subscriber)
        return subscriber, backlog

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)


def status_strip(status: dict, theme: str) -> dict:
    """The screen's status strip from the agent's status (`Agent.status`): each camera, the GPS fix, sync and
    the hotlist's age, and the theme the sun calls for."""
    gps = status.get("gps")
    position = (gps or {}).get("position")
    sync = status.get("sync") or {}
    hotlist = status.get("hotlist") or {}
    return {
        "cameras": [{"id": c.get("id"), "state": c.get("state"), "fps": c.get("fps")} for c in status.get("cameras", [])],
        "gps": "none" if gps is None else (position or {}).get("fix") or gps.get("state") or "no fix",
        "sync": "off" if not sync.get("broker") else "connected" if sync.get("connected") else "waiting",
        "waiting": status.get("waiting", 0),
        "hotlist_version": hotlist.get("version"), "hotlist_age_s": hotlist.get("age_s"),
        "theme": theme, "health": status.get("health", []),
    }
