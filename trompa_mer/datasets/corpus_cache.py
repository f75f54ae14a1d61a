"""Window features of a corpus' audio folder, extracted once and cached under the cache folder.

The cache folder's name is keyed by everything the features depend on:
- the extractor (`feature_signature`: the code of the functions that compute the features,
  the window layout, the feature names, openSMILE's version);
- the audio folder's content: per audio file, its relative name, size and a SHA-256 of its
  bytes. A subset of a corpus, or a replaced, added or removed clip gives another cache (it is
  extracted anew, never mixed with what an earlier folder left); the same clips copied again
  (new modification times, as the shared 4Q folder was three times) or to another path keep
  theirs. Hashing costs about 0.5 s for 4Q's 139 MB, against minutes of extraction and
  20 min of musicnn embeddings that a time-keyed signature threw away on every copy.
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
    """The audio folder's identity: (relative name, size, SHA-256 of the bytes) of every audio file."""
    from ..features import find_audio

    audio_dir = Path(audio_dir).resolve()
    digest = hashlib.sha256(b"audio-content-v1")
    for path in find_audio(audio_dir):
        content = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                content.update(block)
        digest.update(f"\n{path.relative_to(audio_dir).as_posix()}\t{path.stat().st_size}\t"
                      f"{content.hexdigest()}".encode())
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
