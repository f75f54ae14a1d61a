"""What the benchmark scripts share: their argument parser and a median timer."""
from __future__ import annotations

import argparse
import statistics
import time


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose --help prints the script's docstring as written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def median_time(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls of fn(), in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


GENERATED = "generated 30 s wav (Emotify absent)"


def emotify_files(shared_data_dir) -> list:
    """The Emotify clips in track order, or [] when the corpus is absent."""
    from pathlib import Path

    audio = Path(shared_data_dir) / "emotify" / "audio"
    return sorted(audio.glob("*.mp3"), key=lambda p: int(p.stem)) if audio.is_dir() else []


def generated_clip(path, hz: float, rng, seconds: int = 30, rate: int = 22050):
    """A 30 s tone plus noise written to `path` (when the real clips are absent)."""
    import numpy as np
    import soundfile as sf

    t = np.arange(seconds * rate) / rate
    signal = 0.3 * np.sin(2 * np.pi * hz * t) + 0.05 * rng.standard_normal(t.size)
    sf.write(path, signal.astype(np.float32), rate)
    return path
