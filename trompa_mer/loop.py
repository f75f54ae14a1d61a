"""The personalization loop: one function per script step.

create_user -> get_hard_tracks -> (listener answers) -> retrain -> ... ; predict and recommend
at any time. Every function takes its paths as arguments (the scripts pass settings' values),
validates the user id before touching any file, and holds the user's lock while it reads and
writes the user's folder. See docs/loop.md.
"""
from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from . import consensus as cons
from .errors import MERError
from .quadrants import N_CLASSES, QUADRANTS, quadrant_name
from .users import (UPDATE_STRATEGIES, UserStore, committee_folder_name, parse_answers,
                    record_answers, record_queries, record_recommendations, recommended_songs,
                    validate_user_id)

# Default of retrain_model.py --update. The offline experiments (docs/experiments.md, "What the
# evidence says") found "cumulative" (start again from the committee the user was created with
# and update it on every answer so far) never significantly worse than "batch" (the original:
# continue the current committee on the new answers only) and clearly better with small
# batches (XGBoost +.09 weighted F1 at q=4), so it is the default.
UPDATE_STRATEGY = "cumulative"


def _validate_mode(mode: str) -> str:
    if mode not in cons.MODES:
        raise MERError(f"query mode: expected one of {', '.join(cons.MODES)}, got {mode!r}")
    return mode


def _load_committee(path):
    from .committee import Committee

    path = Path(path)
    if not path.is_dir():
        raise MERError(f"{path}: committee folder not found (expected a folder with committee.json)")
    return Committee.load(path)


def _load_pool(feats_dir):
    from .pool import load_pool

    feats_dir = Path(feats_dir)
    if not feats_dir.is_dir():
        raise MERError(f"{feats_dir}: pool folder of feature CSVs not found (set MER_FEATS_DIR "
                       f"or run extract_features.py into it)")
    pool = load_pool(feats_dir)
    if len(pool.song_ids) == 0:
        raise MERError(f"{feats_dir}: the pool holds no feature CSVs")
    return pool


# --- audio for committees with CNN members ---------------------------------------------------
def audio_member_names(committee) -> list[str]:
    """Names of the members that read audio by song id (the CNN) instead of feature rows."""
    return [name for name, m in committee.members if getattr(m, "input_kind", "features") == "audio"]


def _default_audio_dirs(audio_dir, audio_cache_dir):
    # settings lives at the repository root beside the scripts; imported only when a committee
    # has audio members, so feature-only committees never need it (nor an audio folder).
    if audio_dir is None or audio_cache_dir is None:
        try:
            import settings
        except ImportError:
            raise MERError("audio folder: not given and settings.py is not importable; pass "
                           "audio_dir (the scripts read MER_AUDIO_DIR)") from None
        audio_dir = settings.AUDIO_DIR if audio_dir is None else audio_dir
        audio_cache_dir = settings.AUDIO_CACHE_DIR if audio_cache_dir is None else audio_cache_dir
    return Path(audio_dir), Path(audio_cache_dir)


def audio_source_for(committee, song_ids, audio_dir=None, audio_cache_dir=None):
    """The audio source a committee's audio members read `song_ids` through, or None.

    None (and nothing read, no folder needed) when the committee has no audio members.
    Otherwise an AudioCache over `audio_dir` (default settings.AUDIO_DIR) whose decoded 16 kHz
    copies go to a subfolder of `audio_cache_dir` named after the audio folder, so two audio
    folders never share cache files. Every song in `song_ids` must have audio.
    """
    names = audio_member_names(committee)
    if not names:
        return None
    import hashlib

    from .audio_cache import AudioCache

    audio_dir, audio_cache_dir = _default_audio_dirs(audio_dir, audio_cache_dir)
    audio_dir = audio_dir.expanduser().resolve()
    if not audio_dir.is_dir():
        raise MERError(f"{audio_dir}: audio folder not found; the committee's audio member(s) "
                       f"{', '.join(names)} read each song's audio (set MER_AUDIO_DIR to a folder "
                       f"with one audio file per song, named <song_id>.<ext>)")
    key = hashlib.sha1(str(audio_dir).encode()).hexdigest()[:12]
    source = AudioCache.from_folder(audio_dir, Path(audio_cache_dir) / f"{audio_dir.name}-{key}")
    missing = [str(s) for s in song_ids if str(s) not in source]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MERError(f"{audio_dir}: no audio file for song {missing[0]!r}{more}; the committee's "
                       f"audio member(s) {', '.join(names)} need <song_id>.<ext> for every song "
                       f"(set MER_AUDIO_DIR)")
    return source


def pool_song_proba(committee, pool, jobs: int = 1, chunk_windows: int = 60_000,
                    audio_source=None, margin_cache=None) -> np.ndarray:
    """committee.song_proba over the whole pool, in chunks of whole songs, `jobs` at a time.

    Chunks keep the standardized copy and the members' temporaries small (the pool can be
    600,000 windows), and threads run chunks side by side: numpy and XGBoost release the GIL.
    margin_cache (a committee.TreeMarginCache for this pool): tree members start from the
    cached margins of their leading rounds and evaluate only the rest; their full margins are
    stored for the next version of the member.
    """
    n_songs = len(pool.song_ids)
    offsets = np.asarray(pool.offsets)
    n_windows = int(offsets[-1])
    n_chunks = max(1, int(np.ceil(n_windows / chunk_windows)))
    bounds = np.unique(np.searchsorted(offsets, np.linspace(0, n_windows, n_chunks + 1)).clip(0, n_songs))
    bounds[0], bounds[-1] = 0, n_songs
    pairs = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    prefixes, margins = {}, {}
    if margin_cache is not None:
        for i, (_, member) in enumerate(committee.members):
            if hasattr(member, "predict_margin"):
                prefixes[i] = margin_cache.lookup(member, n_windows)
                margins[i] = np.empty((n_windows, N_CLASSES), dtype=np.float32)

    def part(pair):
        a, b = pair
        lo, hi = offsets[a], offsets[b]
        X = np.asarray(pool.X[lo:hi])
        song_of_window = np.repeat(np.arange(b - a), np.diff(offsets[a:b + 1]))
        prefix = {i: (found[0], found[1][lo:hi]) for i, found in prefixes.items() if found is not None}
        out = {}
        proba = committee.song_proba(X, song_of_window=song_of_window, song_ids=pool.song_ids[a:b],
                                     audio_source=audio_source, tree_prefix=prefix, tree_margins_out=out)
        for i, values in out.items():
            if i in margins:
                margins[i][lo:hi] = values
        return proba

    if jobs > 1 and len(pairs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=int(jobs)) as executor:
            parts = list(executor.map(part, pairs))
    else:
        parts = [part(pair) for pair in pairs]
    for i, values in margins.items():
        found = prefixes[i]
        if found is None or found[0] < committee.members[i][1].booster.num_boosted_rounds():
            margin_cache.store(committee.members[i][1], values)
    return np.concatenate(parts, axis=1)


# --- create_user ----------------------------------------------------------------------------
def create_user(user_id: str, mode: str, users_dir, committee_dir, balanced: bool = False,
                annotations_path=None, exist_ok: bool = False, lock_timeout: float = 60.0,
                crowd_member: bool = False, feats_dir=None, seed: int = 1987) -> dict:
    """Create models/users/<id>/ with a copy of the committee, the state and (hc/mix) the
    human consensus of the other listeners. Returns a summary dict (created: bool).

    crowd_member: also pre-train the user's crowd-aware members (leave-one-out on the
    annotations, the user's own left out) and store the crowd features of every pool song in
    `feats_dir` (trompa_mer.crowd_loop; docs/loop.md "The crowd-aware member in the loop")."""
    validate_user_id(user_id)
    _validate_mode(mode)
    store = UserStore(users_dir)
    if store.user_dir(user_id).exists() and not exist_ok:
        raise MERError(f"user {user_id!r} already exists ({store.user_dir(user_id)}); "
                       f"pass --exist-ok to keep it")
    if store.exists(user_id):
        return _existing_user(store, user_id, mode, balanced, crowd_member)
    human = None
    if mode in ("hc", "mix"):
        from .datasets.annotations import load_annotations

        if annotations_path is None or not Path(annotations_path).exists():
            raise MERError(f"annotations: {annotations_path} not found; mode {mode!r} needs the "
                           f"multi-listener annotations (pass --annotations FILE or set MER_ANNOTATIONS)")
        table = load_annotations(annotations_path)
        human = cons.human_consensus(table, exclude_user=user_id)
    committee = _load_committee(committee_dir)  # verifies the checksums before anything is copied
    crowd = None
    if crowd_member:
        from . import crowd_loop

        crowd = crowd_loop.prepare(annotations_path, user_id, committee, feats_dir, seed=seed)
    with store.lock(user_id, lock_timeout):
        if store.exists(user_id):
            if not exist_ok:
                raise MERError(f"user {user_id!r} already exists ({store.user_dir(user_id)})")
            return _existing_user(store, user_id, mode, balanced, crowd_member)
        if store.user_dir(user_id).exists():
            raise MERError(f"{store.user_dir(user_id)}: exists but holds no {store.state_path(user_id).name}; "
                           f"remove the folder to recreate the user")
        state = store.create(user_id, Path(committee_dir).resolve(), mode, balanced, human,
                             None if human is None and crowd is None else Path(annotations_path).resolve(),
                             extra_writer=None if crowd is None else crowd_loop.writer(crowd[0], crowd[1]))
    return {"user_id": user_id, "created": True, "mode": state["mode"], "balanced": state["balanced"],
            "folder": str(store.user_dir(user_id)),
            "consensus_songs": None if human is None else int(len(human)),
            **({} if crowd is None else crowd[2])}


def _existing_user(store, user_id, mode, balanced, crowd_member=False) -> dict:
    state = store.read_state(user_id)
    if bool(state.get("crowd")) != bool(crowd_member):
        raise MERError(f"user {user_id!r} already exists {'with' if state.get('crowd') else 'without'} "
                       f"crowd-aware members, not {'with' if crowd_member else 'without'}; delete "
                       f"{store.user_dir(user_id)} to change it")
    if state["mode"] != mode or bool(state.get("balanced")) != bool(balanced):
        raise MERError(f"user {user_id!r} already exists with mode {state['mode']!r}"
                       f"{' (balanced)' if state.get('balanced') else ''}, not {mode!r}"
                       f"{' (balanced)' if balanced else ''}; delete {store.user_dir(user_id)} to change it")
    return {"user_id": user_id, "created": False, "mode": state["mode"], "balanced": state["balanced"],
            "folder": str(store.user_dir(user_id)), "iteration": state["iteration"]}


# --- get_hard_tracks ------------------------------------------------------------------------
def _rng_for(user_id: str, iteration: int, seed: int) -> np.random.Generator:
    # reproducible per user and round; crc32 because Python's hash() is salted per process
    return np.random.default_rng([int(seed), zlib.crc32(user_id.encode()), int(iteration)])


def get_hard_tracks(user_id: str, q: int, users_dir, feats_dir, lock_timeout: float = 60.0,
                    seed: int = 1987, jobs: int = 1, audio_dir=None, audio_cache_dir=None) -> dict:
    """Rank the pool songs not asked yet by the user's mode, record the top `q` as pending.

    A committee with audio (CNN) members also reads every pool song's audio from `audio_dir`
    (default settings.AUDIO_DIR); see audio_source_for. For a user with crowd-aware members
    (--crowd-member) mc, mix and balanced follow the crowd members' mean probabilities instead
    of the audio committee's (trompa_mer.crowd_loop).

    Asked again while a round is pending, it returns the same pending songs.
    Returns {"songs": [...], "reused": bool, "mode": ..., "scores": {song: score}}.
    """
    validate_user_id(user_id)
    if int(q) < 1:
        raise MERError(f"number of tracks: expected a positive number, got {q}")
    store = UserStore(users_dir)
    with store.lock(user_id, lock_timeout):
        state = store.read_state(user_id)
        store.tidy(user_id, state)
        if state["pending"]:
            return {"songs": list(state["pending"]), "reused": True, "mode": state["mode"], "scores": {}}
        mode = state["mode"]
        pool = _load_pool(feats_dir)
        song_ids = np.asarray(pool.song_ids)
        machine = predicted = human = None
        from . import crowd_loop

        crowd = crowd_loop.user_crowd(store, user_id, state)  # None without --crowd-member
        if crowd is not None and (mode in ("mc", "mix") or state.get("balanced")):
            # a crowd user's machine consensus (mc, mix, balanced) is their crowd members'
            # mean: the model their predictions come from (docs/loop.md, measured there)
            machine = cons.machine_consensus(crowd_loop.pool_proba(*crowd, pool))
            predicted = machine.argmax(axis=1)
        elif mode in ("mc", "mix") or state.get("balanced"):
            committee = _load_committee(store.committee_dir(user_id, state))
            audio = audio_source_for(committee, song_ids.tolist(), audio_dir, audio_cache_dir)
            # A saved committee scores a given pool the same way every time: reuse the cached
            # song probabilities (every new user starts from the same default committee), and
            # a retrained one reuses its pre-trained trees' margins (TreeMarginCache).
            from .committee import TreeMarginCache, cached_song_proba

            margin_cache = TreeMarginCache(feats_dir, committee.scaler, pool.signature)
            member_proba = cached_song_proba(
                committee, feats_dir, song_ids,
                lambda: pool_song_proba(committee, pool, jobs, audio_source=audio,
                                        margin_cache=margin_cache))
            machine = cons.machine_consensus(member_proba)
            predicted = machine.argmax(axis=1)
        if mode in ("hc", "mix"):
            human = store.read_consensus(user_id)
            if human is None:
                raise MERError(f"{store.consensus_path(user_id)}: missing; mode {mode!r} needs the human "
                               f"consensus (recreate the user)")
        scores = cons.mode_scores(mode, song_ids, machine_proba=machine, human_freqs=human,
                                  rng=_rng_for(user_id, state["iteration"], seed))
        settled = set(state["asked"]) | set(state.get("skipped", []))
        songs = cons.select_queries(song_ids, scores, int(q), asked=settled,
                                    balanced=bool(state.get("balanced")), predicted=predicted)
        if not songs:
            raise MERError(f"user {user_id!r}: every song of the pool ({len(song_ids)}) has been asked already")
        store.write_state(user_id, record_queries(state, songs))
    score_of = dict(zip(song_ids.tolist(), np.asarray(scores, dtype=float).tolist()))
    return {"songs": songs, "reused": False, "mode": mode,
            "scores": {s: score_of[s] for s in songs}}


# --- retrain --------------------------------------------------------------------------------
def read_answers_arg(value) -> tuple[object, str]:
    """The -a argument: a path to a JSON file, or (when no such file exists) inline JSON text."""
    text = str(value)
    path = Path(text)
    if path.is_file():
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise MERError(f"{path}: not UTF-8 text (expected a JSON object {{song_id: \"Q1\"..\"Q4\"}})") from None
        source = str(path)
    elif text.lstrip().startswith("{"):
        raw, source = text, "annotations (inline JSON)"
    else:
        raise MERError(f"{text}: annotation file not found (expected a JSON file {{song_id: \"Q1\"..\"Q4\"}})")
    try:
        return json.loads(raw), source
    except json.JSONDecodeError as err:
        raise MERError(f"{source}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None


def song_features(feats_dir, songs) -> dict:
    """{song: (windows x 260 float32)} from the pool store.

    The pool's consolidated cache is memory-mapped, so a retrain reads only its songs' rows
    (parsing even ten CSVs costs more than mapping the cache).
    """
    pool = _load_pool(feats_dir)
    missing = [s for s in songs if s not in pool]
    if missing:
        raise MERError(f"{feats_dir}: no feature CSV for song(s) {', '.join(missing)}")
    return {s: np.asarray(pool.windows(s), dtype=np.float32) for s in songs}


def retrain(user_id: str, answers_arg, users_dir, feats_dir, update: str | None = None,
            lock_timeout: float = 60.0, audio_dir=None, audio_cache_dir=None) -> dict:
    """Update every member of the user's committee on the listener's answers.

    The answers must be a non-empty subset of the pending round; unanswered pending songs are
    recorded as skipped. update="batch" continues the current committee on this round's
    answers; "cumulative" starts again from the user's base committee (as created) and updates
    it on every answer so far, each answer counted once. Audio (CNN) members are updated on the
    same songs' audio from `audio_dir` (default settings.AUDIO_DIR). The new committee and the state are committed together (state.json names
    the committee folder), so a crash leaves the previous pair loadable.
    """
    validate_user_id(user_id)
    update = UPDATE_STRATEGY if update is None else update
    if update not in UPDATE_STRATEGIES:
        raise MERError(f"update strategy: expected one of {', '.join(UPDATE_STRATEGIES)}, got {update!r}")
    raw, source = read_answers_arg(answers_arg)
    store = UserStore(users_dir)
    with store.lock(user_id, lock_timeout):
        state = store.read_state(user_id)
        answers = parse_answers(raw, state, source)
        store.tidy(user_id, state)
        if update == "cumulative":
            from .quadrants import parse_quadrant

            training = {s: parse_quadrant(q) for s, q in state.get("answers", {}).items()}
            training.update(answers)
            start_from = store.base_committee_dir(user_id)
            if not start_from.is_dir():
                raise MERError(f"{start_from}: missing; a cumulative update starts from the committee "
                               f"the user was created with (use --update batch, or recreate the user)")
        else:
            training = dict(answers)
            start_from = store.committee_dir(user_id, state)
        songs = sorted(training)
        feats = song_features(feats_dir, songs)
        X = np.concatenate([feats[s] for s in songs])
        y = np.concatenate([np.full(len(feats[s]), training[s], dtype=np.int64) for s in songs])
        committee = _load_committee(start_from)
        audio = audio_source_for(committee, songs, audio_dir, audio_cache_dir)
        if audio is None:
            committee.update(X, y)
        else:
            committee.update(X, y, song_ids=songs, song_y=[training[s] for s in songs],
                             audio_source=audio)
        new_name = committee_folder_name(int(state["iteration"]) + 1)
        new_dir = store.user_dir(user_id) / new_name
        committee.save(new_dir)
        # crowd-aware members (--crowd-member users): saved as the next crowd-NNNN folder,
        # committed by the same state write (trompa_mer.crowd_loop)
        from . import crowd_loop

        try:
            crowd_name = crowd_loop.retrain_step(store, user_id, state, training, feats, update)
            new_state = record_answers(state, answers, update, new_name, n_windows=len(y))
        except BaseException:
            # refused (e.g. the crowd members are missing) before the commit point: the new
            # committee folder goes again, so a refusal leaves the user folder as it was
            import shutil

            shutil.rmtree(new_dir, ignore_errors=True)
            raise
        if crowd_name is not None:
            new_state["crowd"] = crowd_name
        store.write_state(user_id, new_state)  # the commit point
        store.tidy(user_id, new_state)         # the previous committee folder goes
    return {"user_id": user_id, "iteration": new_state["iteration"], "answered": len(answers),
            "skipped": new_state["history"][-1]["skipped"], "update": update,
            "trained_songs": len(songs), "trained_windows": int(len(y))}


# --- predict --------------------------------------------------------------------------------
def _find_committee_of(model_path: Path) -> Path:
    for folder in (model_path.parent, model_path.parent.parent):
        if (folder / "committee.json").is_file():
            return folder
    raise MERError(f"{model_path}: no committee.json beside this member file (a member is "
                   f"used with its committee's stored scaler)")


def _member_index(committee, model_path: Path) -> int:
    names = [name for name, _ in committee.members]
    stem = model_path.name
    for i, name in enumerate(names):
        if stem == name or stem.startswith(name + "."):
            return i
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


def predict(input_path, output_path, users_dir, pretrained_dir, model: str | None = "default",
            user_id: str | None = None, lock_timeout: float = 60.0, song_id: str | None = None) -> dict:
    """Predict quadrants for a features CSV or an audio file; write the JSON to output_path.

    Audio (CNN) members score an audio input as a whole song (mean over its chunks) and that
    song probability stands for every feature window, so the mean over windows weighs each
    member as committee.song_proba does. A features CSV carries no audio: the audio members
    are left out, named in the JSON's "skipped_members" (an error when nothing is left).

    A user with crowd-aware members (created with --crowd-member) also gets the keys "crowd",
    "listener_probs", "listener_quad" and "listener_source" (crowd_loop.predict_keys); the song
    is `song_id`, else the input's file stem when it is a pool song of the user's crowd table,
    else unknown to the crowd. The original keys stay the audio committee's.
    """
    from . import atomic, crowd_loop

    if user_id is not None:
        validate_user_id(user_id)
    elif song_id is not None:
        raise MERError(f"--song-id {song_id}: used only with -u USER_ID (a user with crowd-aware members)")
    output_path = Path(output_path)
    if output_path.suffix.lower() != ".json":
        raise MERError(f"{output_path}: output must be a .json file")
    X, kind = read_input_features(input_path)
    member_index = crowd = None
    if user_id is not None:
        store = UserStore(users_dir)
        with store.lock(user_id, lock_timeout, shared=True):
            state = store.read_state(user_id)
            committee = _load_committee(store.committee_dir(user_id, state))
            crowd = crowd_loop.user_crowd(store, user_id, state)
        if crowd is None and song_id is not None:
            raise MERError(f"--song-id {song_id}: user {user_id!r} has no crowd-aware members "
                           f"(created without --crowd-member)")
        described = f"user {user_id} (iteration {state['iteration']})"
    elif model in (None, "default"):
        committee = _load_committee(pretrained_dir)
        described = f"default committee ({Path(pretrained_dir)})"
    else:
        model_path = Path(model)
        if model_path.is_dir():
            committee = _load_committee(model_path)
            described = f"committee {model_path}"
        elif model_path.is_file():
            committee = _load_committee(_find_committee_of(model_path))
            member_index = _member_index(committee, model_path)
            described = f"member {committee.members[member_index][0]} of {model_path.parent}"
        else:
            raise MERError(f"{model_path}: model file not found (expected a member file, a committee "
                           f"folder or 'default')")
    proba, used, skipped = _member_window_proba(committee, X, input_path, kind, member_index)
    result = prediction_json(str(input_path), proba[used.index(member_index)] if member_index is not None
                             else proba.mean(axis=0))
    result["model"] = described
    result["input_kind"] = kind
    if skipped:
        result["skipped_members"] = skipped
    if member_index is None:
        names = [committee.members[i][0] for i in used]
        algorithms = [getattr(committee.members[i][1], "algorithm", committee.members[i][0]) for i in used]
        result["member_mean_probs"] = {n: proba[i].mean(axis=0).tolist() for i, n in enumerate(names)}
        result["algorithm_mean_probs"] = {
            a: proba[[i for i, b in enumerate(algorithms) if b == a]].mean(axis=(0, 1)).tolist()
            for a in dict.fromkeys(algorithms)}
    if crowd is not None:
        result.update(crowd_loop.predict_keys(crowd[0], crowd[1], X, input_path, song_id))
    atomic.write_json(output_path, result, indent=None)
    return result


def _member_window_proba(committee, X, input_path, kind, member_index=None):
    """(used members x windows x 4), the indices of the used members, {skipped name: why}.

    Feature members give window rows; an audio member's song probability (from the decoded
    input) is repeated over the windows. With a features CSV the audio members are skipped.
    """
    audio_names = set(audio_member_names(committee))
    skipped = {}
    if audio_names and kind != "audio":
        skipped = {n: "reads audio; the input is a feature CSV (pass the audio file to use it)"
                   for n in audio_names}
    wanted = range(len(committee.members)) if member_index is None else [member_index]
    used = [i for i in wanted if committee.members[i][0] not in skipped]
    if not used:
        raise MERError(f"{input_path}: the audio member(s) {', '.join(sorted(skipped))} need an audio "
                       f"file as input, not a feature CSV")
    proba = np.empty((len(used), X.shape[0], N_CLASSES))
    feature_rows = [i for i, (name, _) in enumerate(committee.members) if name not in audio_names]
    if any(i in feature_rows for i in used):
        windows = np.asarray(committee.window_proba(X), dtype=float)  # feature members only
        for row, i in enumerate(used):
            if i in feature_rows:
                proba[row] = windows[feature_rows.index(i)]
    if any(i not in feature_rows for i in used):
        from .audio_cache import decode_resampled

        source = {"input": decode_resampled(input_path)}
        for row, i in enumerate(used):
            if i not in feature_rows:
                song = committee.members[i][1].predict_proba_songs(["input"], source)[0]
                proba[row] = np.broadcast_to(song, (X.shape[0], N_CLASSES))
    return proba, used, skipped


# --- recommend ------------------------------------------------------------------------------
def read_playlists(path) -> pd.DataFrame:
    """A CSV with a group column and a song column -> DataFrame[group, song] (song lowercase)."""
    path = Path(path)
    if not path.is_file():
        raise MERError(f"{path}: playlist file not found (expected a CSV with columns group, song)")
    try:
        raw = pd.read_csv(path, sep=None, engine="python", dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise MERError(f"{path}: cannot parse as CSV ({err})") from None
    columns = {str(c).strip().lower(): c for c in raw.columns}
    group_col = next((columns[k] for k in ("group", "playlist", "group_id", "playlist_id") if k in columns), None)
    song_col = next((columns[k] for k in ("song", "song_id", "s_id", "track_id", "externalid") if k in columns), None)
    if group_col is None or song_col is None:
        raise MERError(f"{path}: expected columns 'group' and 'song' (or song_id), got {', '.join(map(str, raw.columns))}")
    return pd.DataFrame({"group": raw[group_col].astype(str).str.strip(),
                         "song": raw[song_col].astype(str).str.strip().str.lower()})


def recommend(user_id: str, group: str, playlists_path, users_dir, feats_dir,
              lock_timeout: float = 60.0, audio_dir=None, audio_cache_dir=None) -> dict:
    """For each quadrant, the group's song the user's committee (a crowd user's crowd members)
    rates highest for it, among the group's songs not recommended to this user before; the picks
    are recorded in the state.
    Returns {"Q1": song or None, ...} (a song is used for one quadrant at most)."""
    validate_user_id(user_id)
    playlists = read_playlists(playlists_path)
    group = str(group).strip()
    members = playlists.loc[playlists["group"] == group, "song"].unique().tolist()
    if not members:
        groups = sorted(playlists["group"].unique())
        raise MERError(f"{playlists_path}: no group {group!r} (groups: {', '.join(groups[:20])}"
                       f"{' ...' if len(groups) > 20 else ''})")
    store = UserStore(users_dir)
    with store.lock(user_id, lock_timeout):
        state = store.read_state(user_id)
        pool = _load_pool(feats_dir)
        in_pool = set(np.asarray(pool.song_ids).tolist())
        done = recommended_songs(state)
        candidates = sorted(s for s in members if s in in_pool and s not in done)
        if not candidates:
            raise MERError(f"group {group!r}: no songs left to recommend to user {user_id!r} "
                           f"({len(members)} in the group, {sum(s in in_pool for s in members)} with features, "
                           f"{sum(s in done for s in members)} already recommended)")
        sub = pool.subset(candidates)
        from . import crowd_loop

        crowd = crowd_loop.user_crowd(store, user_id, state)  # None without --crowd-member
        if crowd is not None:
            # a crowd user's predictions come from their crowd members (docs/loop.md), so do
            # the songs recommended for each quadrant
            proba = cons.machine_consensus(crowd_loop.pool_proba(*crowd, sub))
        else:
            committee = _load_committee(store.committee_dir(user_id, state))
            audio = audio_source_for(committee, candidates, audio_dir, audio_cache_dir)
            proba = cons.machine_consensus(committee.song_proba(sub, audio_source=audio))
        sub_ids = np.asarray(sub.song_ids).tolist()
        picks, used = {}, set()
        for c in range(N_CLASSES):
            order = np.lexsort((np.arange(len(sub_ids)), -proba[:, c]))
            pick = next((sub_ids[i] for i in order if sub_ids[i] not in used), None)
            picks[quadrant_name(c)] = pick
            if pick is not None:
                used.add(pick)
        store.write_state(user_id, record_recommendations(state, group, picks))
    return picks


# --- a small committee trained on the spot (demo and tests) --------------------------------
def train_committee(X_raw, y, directory, algorithms=("gnb", "sgd", "xgb"), per_algorithm: int = 1,
                    xgb_rounds: int = 20, xgb_update_rounds: int = 5, seed: int = 1987,
                    feature_names=None, manifest: dict | None = None):
    """Fit a committee on (windows, labels) and save it to `directory`.

    For the demo (no shipped committee yet) and the tests; the real committee comes from
    deam_classifier.py. With per_algorithm > 1 each copy trains on a bootstrap sample, so the
    members disagree the way a committee should.
    """
    from sklearn.preprocessing import StandardScaler

    from .committee import Committee
    from .features import FEATURE_NAMES
    from .members import DEFAULT_XGB_PARAMS, make_member

    X_raw = np.asarray(X_raw, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    scaler = StandardScaler().fit(X_raw)
    X = ((X_raw - scaler.mean_) / scaler.scale_).astype(np.float32)
    rng = np.random.default_rng(seed)
    members = []
    for algorithm in algorithms:
        for k in range(per_algorithm):
            if algorithm == "xgb":
                member = make_member("xgb", params={**DEFAULT_XGB_PARAMS, "seed": seed + k},
                                     rounds=xgb_rounds, update_rounds=xgb_update_rounds)
            elif algorithm == "sgd":
                member = make_member("sgd", seed=seed + k)
            else:
                member = make_member(algorithm)
            rows = rng.integers(0, len(y), len(y)) if per_algorithm > 1 else np.arange(len(y))
            member.fit(X[rows], y[rows])
            members.append((f"{algorithm}_{k}", member))
    info = {"corpus": "generated on the spot (demo/test committee)", **(manifest or {})}
    committee = Committee(members, scaler, list(feature_names or FEATURE_NAMES), info)
    committee.save(directory)
    return committee
