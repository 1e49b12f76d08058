"""One read per vehicle pass: follow each plate across a camera's frames and vote over its readings.

Pure logic, no I/O: the pipeline hands `PlateTracker.update` each frame's
readings with the frame's time, and gets back the passes that are settled.
A pass is settled as soon as enough frames agree on its text, when it has been
followed for `max_wait_s` (so an officer hears of a hit within a second of the
plate first showing), or when the plate has left the picture.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from edge_agent.records import Candidate, PlateReading

FrameRef = TypeVar("FrameRef")
MAX_FRAMES_HELD = 4  # per open pass: the best frame of each of its likeliest readings


@dataclass(frozen=True)
class TrackerSettings:
    max_gap_s: float = 0.5  # a plate unseen this long has left the picture
    max_wait_s: float = 0.7  # the longest a pass waits for more frames before its read is given
    settle_frames: int = 3  # this many frames agreeing on the leading text settle a pass early
    settle_share: float = 0.6  # ... when the leader holds this share of the votes
    max_tracks: int = 32  # per camera; the oldest is settled first when more plates are in view


@dataclass(frozen=True)
class Sighting(Generic[FrameRef]):
    at: float  # seconds (any clock, the same for all frames of a camera)
    reading: PlateReading
    frame: FrameRef  # what the pipeline needs to store the read (the frame itself; never copied here)


@dataclass
class Pass(Generic[FrameRef]):
    """A plate followed across frames: the voted reading and the frame it was best seen in."""

    camera_id: str
    reading: PlateReading
    best: Sighting[FrameRef]
    frames: int
    first_at: float
    settled_at: float
    reason: str  # agreed | waited | left | flushed


@dataclass
class _Track(Generic[FrameRef]):
    """One plate followed across frames. It holds at most one frame per text read (the most
    confident), and none once settled, so a car waiting in view for minutes holds no frames."""

    first_at: float
    last_at: float
    box: tuple[int, int, int, int]
    last_text: str = ""
    texts: list[str] = field(default_factory=list)  # what each frame read, for counting agreement
    frames: int = 0
    votes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    state_votes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    best_by_text: dict[str, Sighting[FrameRef]] = field(default_factory=dict)
    settled: bool = False

    def add(self, sighting: Sighting[FrameRef]) -> None:
        reading = sighting.reading
        self.last_at = sighting.at
        self.box = reading.box
        self.last_text = reading.text
        self.frames += 1
        if self.settled:
            return  # it only absorbs the plate's later frames now
        self.texts.append(reading.text)
        for rank, candidate in enumerate(reading.candidates or (Candidate(reading.text, reading.confidence),)):
            # the first candidate carries the frame's vote; runners-up add a little, so
            # a character the recogniser was unsure of in every frame can still win
            self.votes[candidate.text] += candidate.confidence * (1.0 if rank == 0 else 0.5)
        if reading.state:
            self.state_votes[reading.state] += reading.state_confidence
        kept = self.best_by_text.get(reading.text)
        if kept is None or reading.confidence > kept.reading.confidence:
            self.best_by_text[reading.text] = sighting
        if len(self.best_by_text) > MAX_FRAMES_HELD:
            leader, _ = self.leader()
            worst = min((t for t in self.best_by_text if t != leader),
                        key=lambda t: self.votes.get(t, 0.0))
            del self.best_by_text[worst]

    def leader(self) -> tuple[str, float]:
        text = max(self.votes, key=self.votes.__getitem__)
        total = sum(self.votes.values())
        return text, (self.votes[text] / total if total else 0.0)

    def agreeing_frames(self, text: str) -> int:
        return self.texts.count(text)

    def release(self) -> None:
        self.settled = True
        self.best_by_text.clear()
        self.texts.clear()


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, for plates of at most 8 characters."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _near(box: tuple[int, int, int, int], other: tuple[int, int, int, int], elapsed: float) -> bool:
    """Whether a box could be the same plate as `other`, seen `elapsed` seconds earlier."""
    x, y, w, h = box
    ox, oy, ow, oh = other
    dx = abs((x + w / 2) - (ox + ow / 2))
    dy = abs((y + h / 2) - (oy + oh / 2))
    # a plate moves across a patrol car's view by up to a few plate widths a second
    reach = max(w, ow) * (1.0 + 6.0 * elapsed)
    return dx <= reach and dy <= reach and 0.5 <= w / max(ow, 1) <= 2.0


class PlateTracker(Generic[FrameRef]):
    def __init__(self, settings: TrackerSettings = TrackerSettings()):
        self.settings = settings
        self._tracks: dict[str, list[_Track[FrameRef]]] = defaultdict(list)

    def update(self, camera_id: str, at: float, readings: list[PlateReading], frame: FrameRef) -> list[Pass[FrameRef]]:
        """Add one frame's readings; the passes that settled with it, in the order they settled."""
        settled = self.expire(at)
        tracks = self._tracks[camera_id]
        claimed: set[int] = set()
        for reading in readings:
            track = self._match(tracks, reading, at, claimed)
            if track is None:
                track = _Track(first_at=at, last_at=at, box=reading.box)
                tracks.append(track)
            claimed.add(id(track))
            track.add(Sighting(at, reading, frame))
            if not track.settled and self._agreed(track):
                settled.append(self._settle(camera_id, track, at, "agreed"))
        while len(tracks) > self.settings.max_tracks:
            oldest = tracks.pop(0)
            if not oldest.settled:
                settled.append(self._settle(camera_id, oldest, at, "left"))
        return settled

    def expire(self, at: float) -> list[Pass[FrameRef]]:
        """Passes on any camera settled by time alone (a camera that stops sending frames still gets its reads)."""
        settled = []
        for camera_id in list(self._tracks):
            settled += self._expire(camera_id, at)
        return settled

    def flush(self, at: float) -> list[Pass[FrameRef]]:
        """Settle every open pass: the source has ended."""
        settled = []
        for camera_id, tracks in self._tracks.items():
            settled += [self._settle(camera_id, t, at, "flushed") for t in tracks if not t.settled]
        self._tracks.clear()
        return settled

    def _match(self, tracks: list[_Track[FrameRef]], reading: PlateReading, at: float, claimed: set[int]) -> _Track | None:
        best, best_key = None, None
        for track in tracks:
            if id(track) in claimed:
                continue
            elapsed = at - track.last_at
            if not _near(reading.box, track.box, elapsed):
                continue
            leader, _ = track.leader()
            distance = min(_distance(reading.text, leader), _distance(reading.text, track.last_text))
            if distance > max(2, len(leader) // 2):
                continue  # another plate beside this one
            key = (distance, elapsed)
            if best_key is None or key < best_key:
                best, best_key = track, key
        return best

    def _agreed(self, track: _Track) -> bool:
        text, share = track.leader()
        return track.agreeing_frames(text) >= self.settings.settle_frames and share >= self.settings.settle_share

    def _expire(self, camera_id: str, at: float) -> list[Pass[FrameRef]]:
        settled = []
        keep = []
        for track in self._tracks[camera_id]:
            gone = at - track.last_at > self.settings.max_gap_s
            if not track.settled and gone:
                settled.append(self._settle(camera_id, track, at, "left"))
            elif not track.settled and at - track.first_at >= self.settings.max_wait_s:
                settled.append(self._settle(camera_id, track, at, "waited"))
            if not gone:
                keep.append(track)  # a settled track stays to absorb the plate's later frames
        self._tracks[camera_id] = keep
        return settled

    def _settle(self, camera_id: str, track: _Track, at: float, reason: str) -> Pass[FrameRef]:
        reading, best = vote(track)
        frames = track.frames
        track.release()
        return Pass(camera_id, reading, best, frames, track.first_at, at, reason)


def vote(track: _Track[FrameRef]) -> tuple[PlateReading, Sighting[FrameRef]]:
    """The pass's reading (the text with most votes, with its state) and the frame that showed it best."""
    ranked = sorted(track.votes.items(), key=lambda item: item[1], reverse=True)
    total = sum(track.votes.values()) or 1.0
    best = track.best_by_text.get(ranked[0][0])
    if best is None:  # the winner was only ever a runner-up: the most confident frame shows the plate
        best = max(track.best_by_text.values(), key=lambda s: s.reading.confidence)
    state, state_confidence = None, 0.0
    if track.state_votes:
        state = max(track.state_votes, key=track.state_votes.__getitem__)
        state_confidence = min(1.0, track.state_votes[state] / max(1, len(track.texts)))
    reading = PlateReading(
        text=ranked[0][0],
        confidence=best.reading.confidence,
        box=best.reading.box,
        candidates=tuple(Candidate(text, round(score / total, 4)) for text, score in ranked[:5]),
        state=state,
        state_confidence=round(state_confidence, 3),
    )
    return reading, best
