"""Cost notes before long work: `note: about N min to ...` on stderr, estimated from a rate
measured on the first items of the same work (files decoded, batches trained, splits fitted),
never from a guess. Short work says nothing: the note is printed only when the estimate of the
remaining time is at least `threshold_s` (default 60 s; the commands pass MER_COST_NOTE_SECONDS
through `configure`), and at most once per piece of work.

    note = RateNote(len(files), "to decode 1,431 audio files of english", "file")
    for f in files:
        decode(f)
        note.tick()          # after the first items (or 2 s), prints the estimate once

A memory estimate can ride along: `RateNote(..., bytes_per_item=...)` or `note.set_bytes(total)`
adds `, about 2.1 GB in memory` when the total reaches `MEMORY_NOTE_BYTES`.
"""
from __future__ import annotations

import sys
import time

THRESHOLD_S = 60.0
MEMORY_NOTE_BYTES = 1 << 30  # 1 GiB: a memory estimate below this is not worth a line
MIN_ITEMS = 3                # the rate is measured over at least this many items ...
MIN_SECONDS = 2.0            # ... or this many seconds, whichever comes first


def configure(threshold_s: float | None = None) -> None:
    """Set the threshold (seconds of estimated remaining work) above which notes are printed."""
    global THRESHOLD_S
    if threshold_s is not None:
        THRESHOLD_S = float(threshold_s)


def minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def plural(unit: str) -> str:
    return unit + ("es" if unit.endswith(("s", "ch", "sh", "x")) else "s")


def say(text: str, file=None) -> None:
    print(text, file=file or sys.stderr, flush=True)


class RateNote:
    """Measures `tick`s against the clock and, once, prints the estimated remaining time of
    `total` items (when above the threshold); see the module docstring."""

    def __init__(self, total: int, what: str, unit: str = "item", bytes_per_item: float | None = None,
                 file=None, min_items: int = MIN_ITEMS, min_seconds: float = MIN_SECONDS,
                 repeats: int = 1, warmup: int = 0):
        self.total, self.what, self.unit = int(total), what, unit
        self.bytes_per_item, self.file = bytes_per_item, file
        self.min_items, self.min_seconds = max(1, int(min_items)), float(min_seconds)
        self.repeats = max(1, int(repeats))  # the measured work is done this many times in all
        self.warmup = max(0, int(warmup))    # first items left out of the rate (a slow first batch)
        self.done, self.started, self.said = 0, time.perf_counter(), False
        self.measured_from = 0  # items done when the clock (re)started
        self.estimate_s: float | None = None
        self.total_bytes: float | None = None

    def set_bytes(self, total_bytes: float) -> None:
        self.total_bytes = float(total_bytes)

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.said or self.done >= self.total * self.repeats:
            return
        now = time.perf_counter()
        if self.done <= self.warmup:
            self.started, self.measured_from = now, self.done
            return
        elapsed, measured = now - self.started, self.done - self.measured_from
        if measured < self.min_items and elapsed < self.min_seconds:
            return
        per_item = elapsed / measured
        remaining = per_item * (self.total * self.repeats - self.done)
        self.estimate_s = per_item * self.total * self.repeats
        self.said = True  # measured once: later items do not change the note
        if self.bytes_per_item is not None and self.total_bytes is None:
            self.total_bytes = self.bytes_per_item * self.total
        memory = (f", about {gigabytes(self.total_bytes)} in memory"
                  if self.total_bytes is not None and self.total_bytes >= MEMORY_NOTE_BYTES else "")
        if remaining >= THRESHOLD_S or memory:
            total = f"{self.total:,} {plural(self.unit)}" + (f" x {self.repeats}" if self.repeats > 1 else "")
            first = (f"the first {self.done}" if not self.measured_from
                     else f"item {self.done}" if measured == 1
                     else f"items {self.measured_from + 1}-{self.done}")
            say(f"note: about {minutes(remaining)} more {self.what}{memory} (measured "
                f"{per_item:.3g} s per {self.unit} over {first} of {total})", self.file)
