"""The personalization loop: one function per script step.

create_user -> get_hard_tracks -> (listener answers) -> retrain -> ... ; predict and recommend
at any time. Every function takes its paths as arguments (the scripts pass settings' values),
validates the user id before touching any file, and holds the user's lock while it reads and
writes the user's folder (trompa_mer.users owns its layout). A user's committee is one
Committee whatever its members read; what a member kind needs (audio, crowd rows) is handed to
it through `_songs`. See docs/loop.md.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from . import atomic
from . import consensus as cons
from . import strategies as strat
from .audio_cache import pool_audio_source
from .committee import Committee, Songs
from .errors import MERError, warn
from .pool import open_pool
from .prediction import (av_keys, committee_of_member_file, input_window_proba, prediction_json,
                         read_input_features)
from .pool_scoring import TreeMarginCache, cached_song_proba, pool_song_proba, saved_song_proba
from .quadrants import N_CLASSES, Labels, quadrant_name
from .scales import INTERNAL
from .users import (UPDATE_STRATEGIES, UserStore, committee_folder_name, parse_answer_labels, read_answers_arg, record_answers,
                    record_queries, record_recommendations, recommended_songs, stored_answers,
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


def _load_committee(path) -> Committee:
    path = Path(path)
    if not path.is_dir():
        raise MERError(f"{path}: committee folder not found (expected a folder with committee.json)")
    return Committee.load(path)


def _songs(committee, session, song_ids, X, offsets, audio_dirs) -> Songs:
    """`song_ids` (windows X, offsets) with what the committee's other member kinds read: the
    pool audio for audio members (the committee's, or those of the evidence a crowd listener's
    confidence is bounded by), the user's crowd rows for crowd-aware members."""
    audio = crowd = None
    readers = _audio_names(committee) + _audio_names(committee.evidence)
    if readers:
        audio = pool_audio_source(*audio_dirs, song_ids, readers)
    if committee.of_kind("crowd+features"):
        from .crowd_loop import crowd_rows

        crowd = crowd_rows(session.read_crowd_table(), song_ids)
    return Songs.from_offsets(X, offsets, song_ids, audio=audio, crowd=crowd)


def _audio_names(committee) -> list[str]:
    return [] if committee is None else [committee.members[i][0] for i in committee.of_kind("audio")]


NO_AUDIO_NOTE = ("reads audio; no audio folder (MER_AUDIO_DIR is not set and <MER_DATA_DIR>/audio does not "
                 "exist; put one <song_id>.<ext> per song there to use them; docs/loop.md)")


def _without_absent_audio(committee, audio_dirs):
    """(committee to score with, {skipped member: why}). With no audio folder (audio_dir None:
    the scripts pass None when MER_AUDIO_DIR is unset and <MER_DATA_DIR>/audio does not exist,
    a pool of feature files only) a committee that also has members of other kinds goes on
    without its audio members (the default committee's musicnn members); otherwise the
    committee as it is: a committee of audio members only, a folder named but missing, or a
    folder without some song's audio is refused by pool_audio_source."""
    names = _audio_names(committee) + _audio_names(committee.evidence)
    if not names or audio_dirs[0] is not None:
        return committee, {}
    audio = set(committee.of_kind("audio"))
    keep = [i for i in range(len(committee.members)) if i not in audio]
    if not keep:
        return committee, {}
    reduced = committee if len(keep) == len(committee.members) else committee.subset(keep)
    evidence = committee.evidence
    if evidence is not None and evidence.of_kind("audio"):
        others = [i for i in range(len(evidence.members)) if i not in set(evidence.of_kind("audio"))]
        evidence = evidence.subset(others) if others else None
        if reduced is committee:
            reduced = committee.subset(keep)
    reduced.evidence = evidence
    return reduced, {name: NO_AUDIO_NOTE for name in names}


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
    store.refuse_case_twin(user_id)
    if store.user_dir(user_id).exists() and not exist_ok:
        raise MERError(f"user {user_id!r} already exists ({store.user_dir(user_id)}); "
                       f"pass --exist-ok to keep it")
    if store.exists(user_id):
        return _existing_user(store, user_id, mode, balanced, crowd_member)
    human = coverage = None
    if mode in ("hc", "mix"):
        from .datasets.annotations import load_annotations

        if annotations_path is None or not Path(annotations_path).exists():  # a folder: load_annotations says so
            raise MERError(f"annotations: {annotations_path} not found; mode {mode!r} needs the "
                           f"multi-listener annotations (pass --annotations FILE or set MER_ANNOTATIONS)")
        human = cons.human_consensus(load_annotations(annotations_path), exclude_user=user_id)
        coverage = _consensus_coverage(human, annotations_path, feats_dir, user_id, mode)
    committee = _load_committee(committee_dir)  # verifies the checksums before anything is copied
    crowd = None
    if crowd_member:
        from .crowd_loop import prepare

        crowd = prepare(annotations_path, user_id, committee, feats_dir, open_pool(feats_dir), seed=seed)
    with store.lock(user_id, lock_timeout):
        if store.exists(user_id):
            if not exist_ok:
                raise MERError(f"user {user_id!r} already exists ({store.user_dir(user_id)})")
            return _existing_user(store, user_id, mode, balanced, crowd_member)
        if store.user_dir(user_id).exists():
            raise MERError(f"{store.user_dir(user_id)}: exists but holds no {store.state_path(user_id).name}; "
                           f"remove the folder to recreate the user")
        # provenance as the paths are named (absolute, not resolved through links)
        state = store.create(user_id, Path(committee_dir).absolute(), mode, balanced, human,
                             None if human is None and crowd is None else Path(annotations_path).absolute(),
                             crowd=None if crowd is None else crowd[:2])
    return {"user_id": user_id, "created": True, "mode": state["mode"], "balanced": state["balanced"],
            "folder": str(store.user_dir(user_id)),
            "consensus_songs": None if human is None else int(len(human)),
            **(coverage or {}), **({} if crowd is None else crowd[2])}


def _consensus_coverage(human, annotations_path, feats_dir, user_id, mode) -> dict | None:
    """How many pool songs the human consensus covers; refused when none (hc would rank the
    pool in file order). None when there is no pool folder to compare with yet."""
    if feats_dir is None or not Path(feats_dir).is_dir():
        return None
    song_ids = np.asarray(open_pool(feats_dir).song_ids).tolist()
    covered = int(np.isin(song_ids, np.asarray(human.index, dtype=str)).sum())
    if covered == 0:
        raise MERError(f"{annotations_path}: the human consensus (other listeners' annotations, user "
                       f"{user_id!r} left out: {len(human)} songs) covers none of the {len(song_ids)} pool "
                       f"songs in {feats_dir}; mode {mode!r} needs annotations of pool songs (a song's id is "
                       f"its feature CSV's name, lowercased)")
    return {"consensus_pool_songs": covered, "pool_songs": len(song_ids)}


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
def rng_for(user_id: str, iteration: int, seed: int) -> np.random.Generator:
    """The random stream of a user's round (rand mode): reproducible per user and round; crc32
    because Python's hash() is salted per process."""
    return np.random.default_rng([int(seed), zlib.crc32(user_id.encode()), int(iteration)])


def candidate_sample(user_id: str, iteration: int, seed: int, unlabelled, size: int):
    """(sorted sample of `size` of the `unlabelled` song ids, the seed that drew it): the songs a
    round ranks when only `size` candidates are scored. Reproducible per user and round; the
    trailing 1 keeps this stream apart from rng_for's (the rand mode's scores)."""
    seed_parts = [int(seed), zlib.crc32(user_id.encode()), int(iteration), 1]
    chosen = np.random.default_rng(seed_parts).choice(len(unlabelled), size=int(size), replace=False)
    return np.asarray(unlabelled)[np.sort(chosen)], seed_parts


def get_hard_tracks(user_id: str, q: int, users_dir, feats_dir, lock_timeout: float = 60.0,
                    seed: int = 1987, jobs: int = 1, audio_dir=None, audio_cache_dir=None,
                    strategy: str | None = None, candidates: int | None = None) -> dict:
    """Rank the pool songs not asked yet by the user's mode, record the top `q` as pending.

    mc, mix and balanced follow the mean of the committee's listener members (the crowd-aware
    members of a --crowd-member user, else all). A committee whose scored members read audio
    reads every pool song's audio from `audio_dir` (the scripts pass MER_AUDIO_DIR).
    strategy: how an mc user's songs are ranked (trompa_mer.strategies; default consensus
    entropy, the mc ranking as it always was); recorded in the state ("strategy") and in the
    round's history entry. Other modes take only the default.
    Asked again while a round is pending, it returns the same pending songs.
    candidates: where the committee scores songs (mc, mix, balanced) with the default strategy,
    score only a random sample of this many unlabelled songs (candidate_sample; drawn per user and
    round, recorded in the state), so a round's cost does not grow with the pool; None, or at
    least as many as there are unlabelled songs, ranks every song exactly as before. hc and rand
    rank every song (their scores cost nothing), and so do the other strategies (some compare
    every song with the others).
    Returns {"songs": [...], "reused": bool, "mode": ..., "scores": {song: score},
    "candidates": the sample's record or None} (and "strategy" for an mc user).
    """
    validate_user_id(user_id)
    if int(q) < 1:
        raise MERError(f"number of tracks: expected a positive number, got {q}")
    strategy = strat.DEFAULT_STRATEGY if strategy is None else strategy
    strat.parse_strategy(strategy)  # an unknown name is refused before anything is read
    if candidates is not None and int(candidates) < 1:
        raise MERError(f"candidates: expected a positive number of songs to rank, got {candidates}")
    with UserStore(users_dir).session(user_id, lock_timeout) as session:
        state = session.state
        if state["pending"]:
            return {"songs": list(state["pending"]), "reused": True, "mode": state["mode"], "scores": {},
                    "candidates": state.get("pending_candidates")}
        mode = state["mode"]
        if mode != "mc" and strategy != strat.DEFAULT_STRATEGY:
            raise MERError(f"--strategy {strategy}: strategies rank the committee's songs (mode mc); user "
                           f"{user_id!r} has mode {mode!r}, which takes only the default "
                           f"({strat.DEFAULT_STRATEGY})")
        pool = open_pool(feats_dir)
        song_ids = np.asarray(pool.song_ids)
        settled = set(state["asked"]) | set(state.get("skipped", []))
        if settled.issuperset(song_ids.tolist()):  # said before any scoring
            raise MERError(f"user {user_id!r}: every song of the pool ({len(song_ids)}) has been asked already")
        machine = predicted = human = sample = listener = pool_songs = None
        skipped_members = {}
        scored_by_committee = mode in ("mc", "mix") or bool(state.get("balanced"))
        default_ranking = strategy == strat.DEFAULT_STRATEGY
        all_song_ids = song_ids
        if scored_by_committee and default_ranking and candidates is not None:
            unlabelled = [s for s in song_ids.tolist() if s not in settled]
            if int(candidates) < len(unlabelled):
                song_ids, seed_parts = candidate_sample(user_id, state["iteration"], seed, unlabelled,
                                                        int(candidates))
                sample = {"size": int(candidates), "unlabelled": len(unlabelled), "seed": seed_parts}
        # the committee's scores of the whole pool already cached (a new user of the default
        # committee): taken from its verified manifest, no member built or its library imported
        whole = None
        if scored_by_committee and default_ranking and not state.get("crowd"):
            whole = saved_song_proba(session.committee_dir, feats_dir, all_song_ids,
                                     listing=pool.listing)
        if whole is not None:
            member_proba = whole if sample is None else whole[:, [pool.index_of(s) for s in song_ids.tolist()]]
            machine = cons.machine_consensus(member_proba)
            predicted = machine.argmax(axis=1)
        elif scored_by_committee:
            committee = session.committee()
            listener, skipped_members = _without_absent_audio(committee.listener(), (audio_dir, audio_cache_dir))
            if sample is None:
                pool_songs = _songs(listener, session, song_ids.tolist(), pool.X, pool.offsets,
                                    (audio_dir, audio_cache_dir))
                # A saved committee scores a given pool the same way every time: reuse the cached
                # song probabilities (every new user starts from the same default committee), and
                # a retrained one reuses its pre-trained trees' margins (TreeMarginCache).
                margin_cache = TreeMarginCache(feats_dir, committee.scaler, pool.signature)
                member_proba = cached_song_proba(
                    listener, feats_dir, song_ids,
                    lambda: pool_song_proba(listener, pool, jobs, audio_source=pool_songs.audio,
                                            crowd_rows=pool_songs.crowd, margin_cache=margin_cache),
                    listing=pool.listing)
            elif (whole := cached_song_proba(listener, feats_dir, all_song_ids, None,
                                             listing=pool.listing)) is not None:
                # this committee's scores on the whole pool are cached (a new user of the default
                # committee, once any ranking of the whole pool was made): the sample's rows
                member_proba = whole[:, [pool.index_of(s) for s in song_ids.tolist()]]
            else:
                # only the sample's windows are read from the pool store; the tree-margin cache
                # (per window of the whole pool) is not read for a sample that changes each round
                part = pool.subset(song_ids.tolist())
                part_songs = _songs(listener, session, song_ids.tolist(), part.X, part.offsets,
                                    (audio_dir, audio_cache_dir))
                # one chunk per job (MER_JOBS threads): a sample is smaller than one default chunk
                per_job = max(1, -(-int(part.offsets[-1]) // max(1, int(jobs))))
                member_proba = pool_song_proba(listener, part, jobs, chunk_windows=min(60_000, per_job),
                                               audio_source=part_songs.audio, crowd_rows=part_songs.crowd)
            machine = cons.machine_consensus(member_proba)
            predicted = machine.argmax(axis=1)
        if mode in ("hc", "mix"):
            human = session.read_consensus()
            if human is None:
                raise MERError(f"{session.consensus_path}: missing; mode {mode!r} needs the human "
                               f"consensus (recreate the user)")
        if strategy == strat.DEFAULT_STRATEGY:  # the ranking every mode always had
            scores = cons.mode_scores(mode, song_ids, machine_proba=machine, human_freqs=human,
                                      rng=rng_for(user_id, state["iteration"], seed))
            songs = cons.select_queries(song_ids, scores, int(q), asked=settled,
                                        balanced=bool(state.get("balanced")), predicted=predicted)
            score_of = dict(zip(song_ids.tolist(), np.asarray(scores, dtype=float).tolist()))
            chosen_scores = {s: score_of[s] for s in songs}
        else:
            songs, chosen_scores = _strategy_queries(strategy, int(q), state, settled, listener, pool,
                                                     song_ids, member_proba, pool_songs)
        if not songs:
            raise MERError(f"user {user_id!r}: every song of the pool ({len(song_ids)}) has been asked already")
        new_state = record_queries(state, songs, candidates=sample)
        if mode == "mc":
            new_state["strategy"] = new_state["pending_strategy"] = strategy
        session.commit(new_state)
    return {"songs": songs, "reused": False, "mode": mode, "scores": chosen_scores, "candidates": sample,
            **({"strategy": strategy} if mode == "mc" else {}),
            **({"skipped_members": skipped_members} if skipped_members else {})}


def _strategy_queries(strategy, q, state, settled, listener, pool, song_ids, member_proba, pool_songs):
    """(songs, {song: score}) of a non-default strategy for an mc user: the song features it
    needs are the mean of each song's standardized windows (the committee's scaler), the
    labelled ones those of the songs answered so far."""
    needs = strat.needs(strategy)
    features = labelled = member_av = None
    if "features" in needs:
        features = _song_feature_means(listener, pool)
        position = {s: i for i, s in enumerate(song_ids.tolist())}
        answered = [position[s] for s in state.get("answers", {}) if s in position]
        labelled = features[answered]
    if "av" in needs:
        if not listener.of_target("av"):
            raise MERError(f"--strategy {strategy}: needs arousal/valence regression members (sgd-av, "
                           f"xgb-av); user {state.get('user_id')!r}'s committee has none")
        member_av = listener.song_av(pool_songs)
    return strat.choose(strategy, song_ids, q, member_proba, features=features, labelled_features=labelled,
                        member_av=member_av, asked=settled, balanced=bool(state.get("balanced")))


def _song_feature_means(committee, pool) -> np.ndarray:
    """(songs, columns): the mean of each pool song's standardized windows (standardizing is
    linear, so the raw means are standardized; a song without windows gets zeros)."""
    offsets = np.asarray(pool.offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    sums = np.zeros((len(lengths), pool.X.shape[1]))
    has = lengths > 0
    # summed in float64 straight from the memory-mapped float32 windows (no 600,000-row copy)
    sums[has] = np.add.reduceat(pool.X, offsets[:-1][has], axis=0, dtype=np.float64)
    means = sums / np.maximum(lengths, 1)[:, None]
    scaled = (means - committee.scaler.mean_) / committee.scaler.scale_
    scaled[~has] = 0.0
    return scaled


# --- retrain --------------------------------------------------------------------------------
def retrain(user_id: str, answers_arg, users_dir, feats_dir, update: str | None = None,
            lock_timeout: float = 60.0, audio_dir=None, audio_cache_dir=None, scale=None) -> dict:
    """Update every member of the user's committee on the listener's answers.

    An answer is a quadrant or the listener's own {"arousal": a, "valence": v} (users.
    parse_answer_labels); the committee is updated with quadrants.Labels (regression members
    train towards own values where given, the classifiers on the quadrants). The answers must be a non-empty subset of the pending round; unanswered pending songs are
    recorded as skipped. update="batch" continues the current committee on this round's
    answers; "cumulative" starts again from the user's base committee (as created) and updates
    it on every answer so far, each answer counted once. Audio members read the same songs'
    audio from `audio_dir`. The new committee folders and the state are committed together
    (state.json names them), so a crash leaves the previous committee loadable. `scale`
    (scales.Scale, e.g. 1..9): the scale of the answers' values, mapped onto -1..1.
    """
    validate_user_id(user_id)
    update = UPDATE_STRATEGY if update is None else update
    if update not in UPDATE_STRATEGIES:
        raise MERError(f"update strategy: expected one of {', '.join(UPDATE_STRATEGIES)}, got {update!r}")
    raw, source = read_answers_arg(answers_arg)
    with UserStore(users_dir).session(user_id, lock_timeout) as session:
        state = session.state
        answers, values = parse_answer_labels(raw, state, source, scale or INTERNAL)
        training, training_values = dict(answers), dict(values)
        if update == "cumulative":
            training, training_values = stored_answers(state, str(session.state_path))
            training.update(answers)
            training_values.update(values)
        committee = session.committee(base=update == "cumulative")
        songs = sorted(training)
        pool = open_pool(feats_dir)
        missing = [s for s in songs if s not in pool]
        if missing:
            raise MERError(f"{feats_dir}: no feature CSV for song(s) {', '.join(missing)}")
        # the pool store is memory-mapped: a retrain reads only its songs' rows
        windows = [np.asarray(pool.windows(s), dtype=np.float32) for s in songs]
        offsets = np.concatenate([[0], np.cumsum([len(w) for w in windows])])
        # no audio folder at all: the audio members keep what they knew (the answers are stored,
        # so a cumulative update with the audio back trains them on every answer so far)
        trained, skipped_members = _without_absent_audio(committee, (audio_dir, audio_cache_dir))
        batch = _songs(trained, session, songs, np.concatenate(windows), offsets,
                       (audio_dir, audio_cache_dir))
        # a quadrant per song, and the listener's own (arousal, valence) where they gave them:
        # each member reads what its target kind needs (Committee.update)
        labels = Labels([training[s] for s in songs],
                        [training_values.get(s, (np.nan, np.nan)) for s in songs], where=source, names=songs)
        committee.update(batch, labels, only=[i for i, (name, _) in enumerate(committee.members)
                                              if name not in skipped_members])
        answered = record_answers(state, answers, update, committee_folder_name(int(state["iteration"]) + 1),
                                  n_windows=int(offsets[-1]), values=values)
        if skipped_members:
            answered["history"][-1]["not_updated"] = sorted(skipped_members)
        new_state = session.commit(answered, committee)  # saved, read back, then the state names it
    return {"user_id": user_id, "iteration": new_state["iteration"], "answered": len(answers),
            "skipped": new_state["history"][-1]["skipped"], "update": update,
            "trained_songs": len(songs), "trained_windows": int(offsets[-1]),
            **({"skipped_members": skipped_members} if skipped_members else {})}


# --- predict --------------------------------------------------------------------------------
class PredictionModel:
    """What predict_emotion predicts with, loaded once for any number of inputs: the committee
    (one member of it with -m FILE), a crowd user's crowd table, and how it is described."""

    def __init__(self, committee, described, member_index=None, crowd_table=None):
        self.committee, self.described = committee, described
        self.member_index, self.crowd_table = member_index, crowd_table


def open_prediction_model(users_dir, pretrained_dir, model: str | None = "default", user_id: str | None = None,
                          lock_timeout: float = 60.0) -> PredictionModel:
    """The user's committee (-u, read under their shared lock), or `model`: 'default' (the
    committee in `pretrained_dir`), a committee folder, or one member file of a committee."""
    if user_id is not None:
        validate_user_id(user_id)
        table = None
        with UserStore(users_dir).session(user_id, lock_timeout, shared=True) as session:
            state = session.state
            committee = session.committee()
            if committee.of_kind("crowd+features"):
                table = session.read_crowd_table()
        return PredictionModel(committee, f"user {user_id} (iteration {state['iteration']})", crowd_table=table)
    if model in (None, "default"):
        return PredictionModel(_load_committee(pretrained_dir), f"default committee ({Path(pretrained_dir)})")
    if Path(model).is_dir():
        return PredictionModel(_load_committee(model), f"committee {Path(model)}")
    if Path(model).is_file():
        committee, member_index = committee_of_member_file(Path(model))
        return PredictionModel(committee, f"member {committee.members[member_index][0]} of {Path(model).parent}",
                               member_index=member_index)
    raise MERError(f"{Path(model)}: model file not found (expected a member file, a committee "
                   f"folder or 'default')")


def predict_input(target: PredictionModel, input_path, song_id: str | None = None, scale=None,
                  feats_dir=None, features=None) -> dict:
    """The prediction JSON of one input (a feature CSV or an audio file) by `target`.

    feats_dir: an audio input whose song (its lowercased file stem) has a feature CSV there
    (the pool) uses those features instead of extracting them again ("features_source"); a
    feature CSV input carries no audio: the audio members are skipped and named in
    "skipped_members" with the reason. scale: arousal/valence values on it (scales.Scale,
    "av_scale"), else on -1..1. features: (X, kind) already read from the input."""
    committee, member_index, table = target.committee, target.member_index, target.crowd_table
    input_path = Path(input_path)
    pool_csv = None
    if feats_dir is not None and input_path.is_file() and input_path.suffix.lower() != ".csv":
        candidate = Path(feats_dir) / f"{input_path.stem.lower()}.csv"
        pool_csv = candidate if candidate.is_file() else None
    if features is not None:
        X, kind = features
    elif pool_csv is not None:
        X, _ = read_input_features(pool_csv)
        kind = "audio"  # the audio members still decode the input itself
    else:
        X, kind = read_input_features(input_path)
    proba, used, skipped = input_window_proba(committee, X, input_path, kind, member_index)
    result = prediction_json(str(input_path), proba[0] if member_index is not None else proba.mean(axis=0))
    result["model"] = target.described
    result["input_kind"] = "features" if input_path.suffix.lower() == ".csv" else "audio"
    if pool_csv is not None:
        result["features_source"] = str(pool_csv)
    if skipped:
        result["skipped_members"] = skipped
    if member_index is None:
        names = [committee.members[i][0] for i in used]
        algorithms = [committee.members[i][1].algorithm for i in used]
        result["member_mean_probs"] = {n: proba[i].mean(axis=0).tolist() for i, n in enumerate(names)}
        result["algorithm_mean_probs"] = {
            a: proba[[i for i, b in enumerate(algorithms) if b == a]].mean(axis=(0, 1)).tolist()
            for a in dict.fromkeys(algorithms)}
    if table is not None:
        from .crowd_loop import predict_keys

        result.update(predict_keys(committee, table, X, input_path, song_id))
    result.update(scaled_av(av_keys(committee, X, member_index), scale))
    return result


def scaled_av(keys: dict, scale) -> dict:
    """The arousal/valence keys (prediction.av_keys) with their values on `scale` (and
    "av_scale": [low, high]); unchanged without a scale or without values."""
    if scale is None or not keys:
        return keys
    keys = dict(keys)
    for name in ("arousal", "valence"):
        keys[name] = scale.from_internal(keys[name])
        keys[f"output_{name}"] = [scale.from_internal(v) for v in keys[f"output_{name}"]]
    keys["av_scale"] = [scale.low, scale.high]
    return keys


def predict(input_path, output_path, users_dir, pretrained_dir, model: str | None = "default",
            user_id: str | None = None, lock_timeout: float = 60.0, song_id: str | None = None,
            scale=None) -> dict:
    """Predict quadrants for a features CSV or an audio file; write the JSON to output_path
    (None or '-': not written, the caller prints it).

    The original keys come from the members that read the input itself: feature members per
    window, audio members (the CNN) per song from the decoded input, repeated over the windows
    so the mean over windows weighs each member as song_proba does. A features CSV carries no
    audio: the audio members are left out, named in "skipped_members" (an error when nothing
    is left).
    A --crowd-member user's crowd members add the keys "crowd", "listener_probs",
    "listener_quad" and "listener_source" (crowd_loop.predict_keys); the song is `song_id`,
    else the input's file stem when it is a pool song of the user's crowd table.
    """
    if user_id is not None:
        validate_user_id(user_id)
    elif song_id is not None:
        raise MERError(f"--song-id {song_id}: used only with -u USER_ID (a user with crowd-aware members)")
    to_stdout = output_path in (None, "-")
    if not to_stdout:
        output_path = Path(output_path)
        if output_path.suffix.lower() != ".json":
            raise MERError(f"{output_path}: output must be a .json file")
        atomic.require_folder_of(output_path)
    features = read_input_features(input_path)  # refused before any model is loaded
    target = open_prediction_model(users_dir, pretrained_dir, model, user_id, lock_timeout)
    if target.crowd_table is None and song_id is not None:
        raise MERError(f"--song-id {song_id}: user {user_id!r} has no crowd-aware members "
                       f"(created without --crowd-member)")
    result = predict_input(target, input_path, song_id, scale, features=features)
    if not to_stdout:
        atomic.write_json(output_path, result, indent=None)
    return result


def prediction_inputs(paths) -> list[Path]:
    """The input files of a batch: each path a feature CSV or audio file, or a folder searched
    recursively for them (sorted). MERError naming a missing path or an empty folder."""
    from .features import AUDIO_SUFFIXES

    wanted = {".csv", *AUDIO_SUFFIXES}
    files = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in wanted
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise MERError(f"{path}: no feature CSVs or audio files ({', '.join(sorted(wanted))}) in this "
                               f"folder or its subfolders")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise MERError(f"{path}: input not found (expected a feature CSV, an audio file or a folder)")
    return files


def batch_output(output, inputs) -> str:
    """How a batch is written: 'stdout' (-: JSON Lines), 'jsonl' (a .jsonl file) or 'folder'
    (an existing folder: <song id>.json per input). MERError otherwise, and for a folder when
    two inputs would write the same file."""
    if output == "-":
        return "stdout"
    path = Path(output)
    if path.suffix.lower() == ".jsonl":
        atomic.require_folder_of(path)
        return "jsonl"
    if not path.is_dir():
        raise MERError(f"-o/--output {path}: for several inputs expected an existing folder (one JSON per "
                       f"song), a .jsonl file (JSON Lines) or - (JSON Lines on stdout); "
                       f"{'folder ' + str(path) + ' does not exist (create it first)' if path.suffix == '' else 'got a file name'}")
    seen = {}
    for item in inputs:
        song = item.stem.lower()
        if song in seen:
            raise MERError(f"{item}: writes {path / (song + '.json')} as {seen[song]} does; one JSON per song "
                           f"needs distinct file names (or write JSON Lines: -o FILE.jsonl)")
        seen[song] = item
    return "folder"


def predict_batch(paths, output, users_dir, pretrained_dir, model: str | None = "default",
                  user_id: str | None = None, lock_timeout: float = 60.0, scale=None, feats_dir=None,
                  report=None, stdout=None) -> dict:
    """Predict every input of `paths` (files and folders: prediction_inputs) with one model
    loaded once; write each JSON as `batch_output` says. An input that fails is reported and
    the others go on. report(i, n, path, result or None, error or None) is called after each.
    Audio inputs whose song has a feature CSV in `feats_dir` (the pool) reuse it. Returns
    {"predicted", "failed": [(path, message)], "skipped_members": {name: [inputs]}, "mode"}."""
    import json
    import sys

    inputs = prediction_inputs(paths)
    mode = batch_output(output, inputs)
    target = open_prediction_model(users_dir, pretrained_dir, model, user_id, lock_timeout)
    stdout = stdout or sys.stdout
    failed, skipped, predicted = [], {}, 0
    lines = []
    for i, path in enumerate(inputs, start=1):
        try:
            result = predict_input(target, path, None, scale, feats_dir=feats_dir)
        except Exception as err:  # one bad file (a corrupt mp3, a foreign CSV) never stops the others
            message = str(err) if isinstance(err, MERError) else \
                f"{path}: unexpected {type(err).__name__}: {' '.join(str(err).split())}"
            failed.append((str(path), message))
            if report:
                report(i, len(inputs), path, None, message)
            continue
        predicted += 1
        for name in result.get("skipped_members", {}):
            skipped.setdefault(name, []).append(str(path))
        if mode == "folder":
            atomic.write_json(Path(output) / f"{path.stem.lower()}.json", result, indent=None)
        elif mode == "stdout":
            stdout.write(json.dumps(result) + "\n")
            stdout.flush()
        else:
            lines.append(json.dumps(result))
        if report:
            report(i, len(inputs), path, result, None)
    if mode == "jsonl":
        atomic.write_text(output, "".join(line + "\n" for line in lines))
    return {"inputs": len(inputs), "predicted": predicted, "failed": failed, "skipped_members": skipped,
            "mode": mode, "model": target.described}


# --- recommend ------------------------------------------------------------------------------
def recommend(user_id: str, group: str, playlists_path, users_dir, feats_dir,
              lock_timeout: float = 60.0, audio_dir=None, audio_cache_dir=None) -> dict:
    """For each quadrant, the group's song the user's listener members (a crowd user's crowd
    members, else the whole committee) rate highest for it, among the group's songs not
    recommended to this user before; the picks are recorded in the state.
    Returns {"picks": {"Q1": song or None, ...}} (a song is used for one quadrant at most), with
    "skipped_members" ({name: why}) when audio members were left out, as the other verbs do."""
    from .datasets.playlists import read_playlists

    validate_user_id(user_id)
    playlists = read_playlists(playlists_path)
    group = str(group).strip()
    members = playlists.loc[playlists["group"] == group, "song"].unique().tolist()
    if not members:
        groups = sorted(playlists["group"].unique())
        raise MERError(f"{playlists_path}: no group {group!r} (groups: {', '.join(groups[:20])}"
                       f"{' ...' if len(groups) > 20 else ''})")
    with UserStore(users_dir).session(user_id, lock_timeout) as session:
        state = session.state
        pool = open_pool(feats_dir)
        in_pool = set(np.asarray(pool.song_ids).tolist())
        done = recommended_songs(state)
        candidates = sorted(s for s in members if s in in_pool and s not in done)
        if not candidates:
            raise MERError(f"group {group!r}: no songs left to recommend to user {user_id!r} "
                           f"({len(members)} in the group, {sum(s in in_pool for s in members)} with features, "
                           f"{sum(s in done for s in members)} already recommended)")
        without = [s for s in members if s not in in_pool]
        if without:  # a refusal above says it in its one line; here the picks go on without them
            warn(f"{playlists_path}: group {group!r}: {len(without)} song(s) without features in {feats_dir} "
                 f"left out: {', '.join(without[:10])}{' ...' if len(without) > 10 else ''} "
                 f"(extract their features to recommend them)")
        sub = pool.subset(candidates)
        listener, skipped_members = _without_absent_audio(session.committee().listener(), (audio_dir, audio_cache_dir))
        sub_ids = np.asarray(sub.song_ids).tolist()
        songs = _songs(listener, session, sub_ids, sub.X, sub.offsets, (audio_dir, audio_cache_dir))
        proba = cons.machine_consensus(listener.song_proba(songs))
        picks, used = {}, set()
        for c in range(N_CLASSES):
            order = np.lexsort((np.arange(len(sub_ids)), -proba[:, c]))
            pick = next((sub_ids[i] for i in order if sub_ids[i] not in used), None)
            picks[quadrant_name(c)] = pick
            if pick is not None:
                used.add(pick)
        session.commit(record_recommendations(state, group, picks))
    return {"picks": picks, **({"skipped_members": skipped_members} if skipped_members else {})}
