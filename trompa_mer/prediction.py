"""What predict_emotion computes from one input file: its windows, the probabilities of the
members that read the file itself, and the original system's JSON keys."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .committee import Committee, Songs
from .errors import MERError
from .finite import check_proba
from .quadrants import N_CLASSES, QUADRANTS, quadrant_name


def committee_of_member_file(model_path: Path) -> tuple[Committee, int]:
    """The committee a member file belongs to (its scaler is needed) and the member's index."""
    folder = next((f for f in (model_path.parent, model_path.parent.parent) if (f / "committee.json").is_file()), None)
    if folder is None:
        raise MERError(f"{model_path}: no committee.json beside this member file (a member is "
                       f"used with its committee's stored scaler)")
    committee = Committee.load(folder)
    names = committee.names()
    for i, name in enumerate(names):
        if model_path.name == name or model_path.name.startswith(name + "."):
            return committee, i
    raise MERError(f"{model_path}: not a member of the committee in {model_path.parent} "
                   f"(members: {', '.join(names)})")


def read_input_features(input_path) -> tuple[np.ndarray, str]:
    """Window features from a feature CSV, or extracted on the fly from an audio file."""
    from .features import AUDIO_SUFFIXES, FEATURE_NAMES, extract_features, read_feature_csv

    path = Path(input_path)
    if not path.is_file():
        raise MERError(f"{path}: input file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = read_feature_csv(path)
    elif suffix in AUDIO_SUFFIXES:
        table = extract_features(path)
    else:
        raise MERError(f"{path}: expected a feature CSV (.csv) or audio ({', '.join(AUDIO_SUFFIXES)})")
    X = table[FEATURE_NAMES].to_numpy(dtype=np.float32)
    if X.shape[0] == 0:
        raise MERError(f"{path}: no feature windows (is the audio shorter than 1 s?)")
    return X, ("audio" if suffix != ".csv" else "features")


def prediction_json(input_name: str, window_proba: np.ndarray) -> dict:
    """The original's keys from (windows, 4) probabilities."""
    mean = window_proba.mean(axis=0)
    predictions = window_proba.argmax(axis=1)
    freq = Counter(quadrant_name(p) for p in predictions)
    freq_pred = {q: freq[q] for q in QUADRANTS if freq[q]}
    return {
        "input_feats": input_name,
        "output_probs": window_proba.tolist(),
        "mean_probs": mean.tolist(),
        "highest_prob_quad": quadrant_name(int(mean.argmax())),
        "output_predictions": predictions.astype(int).tolist(),
        "freq_pred": freq_pred,
        # ties go to the quadrant order Q1..Q4 (max() over the ordered dict)
        "mode_quad": max(freq_pred, key=freq_pred.get),
    }


def input_window_proba(committee, X, input_path, kind, member_index=None):
    """(used members x windows x 4), the indices of the used members, {skipped name: why}.

    The members that read the input file itself: feature members give window rows; a song
    member's (window statistics) and an audio member's (the decoded input) song probability is
    repeated over the windows. With a
    features CSV the audio members are skipped. (Crowd members read the song's other
    listeners: crowd_loop.predict_keys.)
    """
    audio = committee.of_kind("audio")
    skipped = {}
    if audio and kind != "audio":
        skipped = {committee.members[i][0]: "reads audio; the input is a feature CSV (pass the audio "
                                            "file to use it)" for i in audio}
    readers = committee.of_kind("features", "song-stats") + ([] if skipped else audio)
    used = sorted(readers) if member_index is None else [i for i in [member_index] if i in readers]
    if not used:
        raise MERError(f"{input_path}: the audio member(s) {', '.join(sorted(skipped))} need an audio "
                       f"file as input, not a feature CSV")
    songs = Songs.from_offsets(X, [0, len(X)], ["input"])
    if any(i in audio for i in used):
        from .audio_cache import decode_resampled

        songs.audio = {"input": decode_resampled(input_path)}
    sub = committee.subset(used)
    windows = sub.window_proba(X) if sub.of_kind("features") else None
    proba = np.empty((len(used), X.shape[0], N_CLASSES))
    for row, i in enumerate(used):
        kind_of_member = sub.members[row][1].input_kind
        if kind_of_member != "features":  # one probability for the whole input
            song = sub.members[row][1].predict_proba(sub.member_input(kind_of_member, songs))[0]
            proba[row] = np.broadcast_to(song, (X.shape[0], N_CLASSES))
        else:
            proba[row] = windows[sub.of_kind("features").index(row)]
    check_proba(proba, [committee.members[i][0] for i in used], input_path)
    return proba, used, skipped


def av_keys(committee, X, member_index=None) -> dict:
    """The arousal/valence keys of a prediction whose members include regression members
    (target kind "av"): {} when they do not, so the JSON stays the original's.

    The members are the committee's regression members (one member with -m FILE). Crowd-aware
    members (what a crowd user's quadrant prediction is the mean of) predict no arousal/valence,
    so a crowd user's values come from the regression members of their audio committee. Keys: "output_arousal", "output_valence" (per window: the mean of the
    regression members' predictions, -1..1), "arousal", "valence" (the song: the mean of its
    windows), "av_members" (their names)."""
    chosen = committee.subset([member_index]) if member_index is not None else committee
    regressors = [i for i in chosen.of_target("av") if chosen.members[i][1].input_kind == "features"]
    if not regressors:
        return {}
    regressors_only = chosen.subset(regressors)
    windows = regressors_only.window_av(X).mean(axis=0)  # (windows, 2)
    if not np.isfinite(windows).all():
        raise MERError(f"arousal/valence: members {', '.join(regressors_only.names())} give non-finite "
                       "values (NaN); their weights are not finite (rebuild the committee)")
    song = windows.mean(axis=0)
    return {"arousal": float(song[0]), "valence": float(song[1]),
            "output_arousal": windows[:, 0].tolist(), "output_valence": windows[:, 1].tolist(),
            "av_members": regressors_only.names()}
