"""Window features of a corpus' audio folder, extracted once and cached under the cache folder.

The cache folder's name is keyed by everything the features depend on:
- the extractor (`feature_signature`: the code of the functions that compute the features,
  the window layout, the feature names, openSMILE's version);
- the audio folder itself: its resolved path and, per audio file, its relative name, size and
  modification time (ns). Another folder of the same base name, a subset of a corpus, or a
  replaced, added or removed clip gives another cache (it is extracted anew, never mixed with
  what an earlier folder left).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import MERError


def feature_signature() -> str:
    """Changes whenever what the extractor computes can change (edits elsewhere in features.py
    keep the cache)."""
    import inspect

    import opensmile

    from .. import features

    parts = [opensmile.__version__, str(features.FRAMES_PER_HOP), str(features.FRAMES_PER_WINDOW),
             ",".join(features.FEATURE_NAMES)]
    for name in ("load_audio", "_config_text", "_smile", "extract_llds", "aggregate_windows",
                 "features_from_signal", "extract_features", "write_feature_csv"):
        function = getattr(features, name, None)
        parts.append(inspect.getsource(function) if function is not None else name)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def folder_signature(audio_dir) -> str:
    """The audio folder's identity: resolved path + (name, size, mtime_ns) of every audio file."""
    from ..features import find_audio

    audio_dir = Path(audio_dir).resolve()
    digest = hashlib.sha256(str(audio_dir).encode())
    for path in find_audio(audio_dir):
        stat = path.stat()
        digest.update(f"\n{path.relative_to(audio_dir).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def corpus_features(name: str, audio_dir, cache_dir, jobs: int = 1, progress: bool = True) -> Path:
    """Extract (or reuse) the window features of every clip in `audio_dir`; the feature folder."""
    from ..features import extract_folder

    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise MERError(f"{audio_dir}: {name} audio folder not found")
    feats = Path(cache_dir) / f"{name}-{feature_signature()}-{folder_signature(audio_dir)}" / "feats"
    summary = extract_folder(audio_dir, feats, jobs=jobs, progress=progress)
    if summary["failed"]:
        raise MERError(f"{summary['failed'][0][1]} ({len(summary['failed'])} clips failed)")
    return feats
