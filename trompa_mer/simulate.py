"""Offline personalization experiments: simulate real listeners answering queries.

Each listener of a multi-annotator dataset is simulated in turn: the committee asks for `q`
songs of the listener's pool per iteration (query modes from `consensus`), the listener
"answers" with their recorded labels, the committee is updated, and F1 is measured on a
held-out part of the listener's songs after every iteration.

Protocol (one *simulation* = user x repeat x mode x update x (q, e) configuration):
- users with at least `min_annotations` annotated songs that have features;
- per user and repeat, a fixed split of their songs, 85 % pool / 15 % test, identical for every
  mode, update strategy and configuration (seeded from the base seed, the user and the repeat);
- the human consensus always excludes the simulated user;
- update "batch": every member continues on the new answers only (the original loop);
  update "cumulative": from the pre-trained committee, every member is updated with all answers
  so far (each answer counted once, whatever the iteration);
- after every iteration: weighted and macro F1 on the test songs per algorithm (mean of its
  members' probabilities) and for the whole committee, and the class counts asked so far.
Two reference points per user x repeat on the same test songs: "crowd" (the other listeners'
majority quadrant, the other listeners' overall majority where a song has none) and "own"
(members trained only on the user's pool labels).

Work is split into jobs of one user x one mode (plus one reference job per user); every finished
job is written as one part file, so an interrupted run resumes where it stopped. Jobs run in
this process, in joblib workers or on a Dask cluster.
"""
from __future__ import annotations

import copy
import json
import re
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split
from sklearn.preprocessing import StandardScaler

from . import atomic
from .consensus import MODES, human_consensus, machine_consensus, mode_scores, select_queries
from .errors import MERError
from .quadrants import N_CLASSES, QUADRANTS

UPDATES = ("batch", "cumulative")
DEFAULT_ALGORITHMS = ("gnb", "sgd", "xgb")
COMMITTEE = "committee"  # algorithm name of the (audio) committee's rows
FULL = "full"  # audio committee and crowd-aware members weighted equally, when those run
COUNT_COLUMNS = [f"n_{q}" for q in QUADRANTS]
RESULT_COLUMNS = ["user", "repeat", "mode", "update", "config", "queries", "algorithm", "iteration",
                  "n_annotations", "f1_weighted", "f1_macro", *COUNT_COLUMNS,
                  "n_pool", "n_test", "n_test_crowd"]

# Paths are relative to the shared data folder; the script resolves them.
PRESETS = {
    "trompa-benchmark": {
        "annotations": "trompa/annotations.json",
        "features": "trompa/track_features.csv",
        "min_annotations": 80,
        "pretrain": "leave-user-out",
        "queries": [4, 10],
        "iterations": [15, 6],
        "modes": list(MODES),
        "updates": list(UPDATES),
        "repeats": 3,
    },
}
# listeners outside the benchmark (20-79 songs), for choosing options before the benchmark sees
# them; q4x15 and q10x6 use up a small listener's pool early, which the runner allows
PRESETS["trompa-dev"] = {**PRESETS["trompa-benchmark"], "min_annotations": 20, "max_annotations": 79}


# --- features ------------------------------------------------------------------------------
@dataclass
class FeatureTable:
    """Feature rows grouped by song: rows of song i are X[offsets[i]:offsets[i+1]].

    Song-level tables have one row per song; a window-level pool has one row per window.
    """

    song_ids: np.ndarray
    X: np.ndarray
    offsets: np.ndarray
    feature_names: list

    def __post_init__(self):
        self.song_ids = np.asarray(self.song_ids).astype(str)
        self._index = {s: i for i, s in enumerate(self.song_ids.tolist())}

    def has(self, song) -> bool:
        return song in self._index

    def gather(self, songs) -> tuple[np.ndarray, np.ndarray]:
        """Rows of `songs` (in that order) and their offsets."""
        idx = [self._index[s] for s in songs]
        starts, ends = self.offsets[idx], self.offsets[np.asarray(idx, dtype=int) + 1]
        lengths = ends - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if len(idx) == 0:
            return self.X[:0], offsets
        rows = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])
        return self.X[rows], offsets

    def subset(self, songs) -> "FeatureTable":
        songs = [s for s in songs if s in self._index]
        X, offsets = self.gather(songs)
        return FeatureTable(np.asarray(songs), X, offsets, list(self.feature_names))


_ID_COLUMNS = ("s_id", "song", "song_id", "track_id", "id", "externalid")


def load_song_features(path) -> FeatureTable:
    """A song-level table (CSV or parquet): one id column (s_id, song, song_id...) + numbers."""
    path = Path(path)
    if not path.exists():
        raise MERError(f"{path}: feature file not found")
    if path.suffix.lower() == ".parquet":
        table = pd.read_parquet(path)
    else:
        try:
            table = pd.read_csv(path, sep=None, engine="python")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise MERError(f"{path}: cannot parse as CSV ({err})") from None
    lower = {str(c).strip().lower(): c for c in table.columns}
    id_col = next((lower[k] for k in _ID_COLUMNS if k in lower), None)
    if id_col is None:
        raise MERError(f"{path}: missing a song id column (one of {', '.join(_ID_COLUMNS)})")
    values = table.drop(columns=[id_col])
    bad = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if bad:
        raise MERError(f"{path}: field {bad[0]!r}: expected numbers in every feature column")
    if values.shape[1] == 0:
        raise MERError(f"{path}: no feature columns beside {id_col!r}")
    X = values.to_numpy(dtype=np.float32)
    if not np.isfinite(X).all():
        row = int(np.where(~np.isfinite(X).all(axis=1))[0][0])
        raise MERError(f"{path}: row {row + 2}: missing or non-finite feature value")
    ids = table[id_col].astype(str).str.strip().str.lower()
    # the TROMPA-MER table repeats a few songs with identical values: keep one; refuse conflicts
    repeated = pd.DataFrame(X).assign(_id=ids.to_numpy()).duplicated()
    X, ids = X[~repeated.to_numpy()], ids[~repeated.to_numpy()].to_numpy()
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise MERError(f"{path}: field {id_col!r}: song id {dup!r} appears more than once with different values")
    return FeatureTable(ids, X, np.arange(len(ids) + 1, dtype=np.int64), [str(c) for c in values.columns])


def load_features(path) -> FeatureTable:
    """A folder of window-level feature CSVs (the pool store) or a song-level table."""
    path = Path(path)
    if path.is_dir():
        from .pool import load_pool  # the lead's pool store

        pool = load_pool(path)
        return FeatureTable(np.asarray(pool.song_ids).astype(str), np.asarray(pool.X, dtype=np.float32),
                            np.asarray(pool.offsets, dtype=np.int64), list(pool.feature_names))
    return load_song_features(path)


def load_annotation_table(path) -> pd.DataFrame:
    """Annotations by file type: a .mat file is AMG1608, anything else the lead's loaders."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        from .datasets.amg1608 import load_amg1608

        return load_amg1608(path)
    from .datasets.annotations import load_annotations

    return load_annotations(path)


def prepare_annotations(annotations: pd.DataFrame) -> pd.DataFrame:
    """One label per (user, song): a listener who annotated a song twice counts with the last."""
    table = annotations[["user", "song", "quadrant"]].copy()
    table["user"] = table["user"].astype(str)
    table["song"] = table["song"].astype(str)
    table["quadrant"] = table["quadrant"].astype(np.int64)
    return table.drop_duplicates(["user", "song"], keep="last").reset_index(drop=True)


# --- the committee under simulation --------------------------------------------------------
@dataclass
class SimCommittee:
    """Members (algorithm, member) + the scaler of their training data."""

    members: list
    scaler: object = None

    def transform(self, X):
        return X if self.scaler is None else self.scaler.transform(X).astype(np.float32)

    def copy(self) -> "SimCommittee":
        return SimCommittee([(a, clone_member(m)) for a, m in self.members], self.scaler)

    def algorithms(self) -> list:
        return list(dict.fromkeys(a for a, _ in self.members))

    def audio_index(self) -> list:
        """Members that read audio features only (the crowd-aware ones also read other listeners)."""
        return [k for k, (_, m) in enumerate(self.members) if not _reads_crowd(m)]

    def has_crowd(self) -> bool:
        return any(_reads_crowd(m) for _, m in self.members)

    def song_proba(self, X_scaled, offsets, song_input=None) -> np.ndarray:
        """(members, songs, 4): mean of each song's row probabilities per member.

        song_input: (songs, crowd + audio columns) for crowd-aware members (one row per song).
        """
        starts = offsets[:-1]
        lengths = np.diff(offsets)
        out = np.empty((len(self.members), len(starts), N_CLASSES))
        for k, (_, member) in enumerate(self.members):
            if _reads_crowd(member):
                out[k] = member.predict_proba(song_input)
                continue
            proba = member.predict_proba(X_scaled)
            if len(starts) == len(proba):  # one row per song
                out[k] = proba
            else:
                out[k] = np.add.reduceat(proba, starts, axis=0) / lengths[:, None]
        return out

    def update(self, X_scaled, y, song_input=None, song_y=None):
        for _, member in self.members:
            if _reads_crowd(member):
                member.update(song_input, song_y)
            else:
                member.update(X_scaled, y)

    @classmethod
    def from_committee(cls, committee) -> "SimCommittee":
        """Adapt a trompa_mer.committee.Committee (members + scaler) for simulation."""
        members = [(getattr(m, "algorithm", str(name)), m) for name, m in committee.members]
        if any(getattr(m, "input_kind", "features") not in ("features", "crowd+features") for _, m in members):
            raise MERError("committee: the simulator runs feature members only (no audio members)")
        return cls(members, committee.scaler)


def _reads_crowd(member) -> bool:
    return getattr(member, "input_kind", "features") == "crowd+features"


def clone_member(member):
    """An independent copy of a trained member.

    copy.deepcopy works for every member, but an XGBoost booster deep-copies through a full
    serialize/parse round trip (tens of ms for 400 trees), and the cumulative update restores
    the pre-trained committee every iteration; slicing all rounds (XGBoost's own C-level copy)
    is several times cheaper. A `copy` verb on the members would be the cleaner seam.
    """
    booster = getattr(member, "booster", None)
    if booster is None:
        return copy.deepcopy(member)
    twin = copy.copy(member)
    twin.__dict__ = {k: (copy.deepcopy(v) if k != "booster" else None) for k, v in member.__dict__.items()}
    twin.booster = booster[0:booster.num_boosted_rounds()]
    return twin


def _new_member(algorithm, member_params):
    from .members import make_member  # the committee helper's member registry

    return make_member(algorithm, **dict(member_params.get(algorithm, {})))


def rows_for_songs(features: FeatureTable, songs, labels_of) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of `songs`, each labeled with its song's label."""
    X, offsets = features.gather(songs)
    y = np.repeat(np.asarray([labels_of[s] for s in songs], dtype=np.int64), np.diff(offsets))
    return X, y


def majority_labels(freqs: pd.DataFrame) -> pd.Series:
    """Majority quadrant per song of a consensus table; songs with a tie are dropped."""
    values = freqs[list(QUADRANTS)].to_numpy(dtype=float)
    top = values.max(axis=1, keepdims=True)
    unique = (np.isclose(values, top)).sum(axis=1) == 1
    return pd.Series(values.argmax(axis=1)[unique].astype(np.int64), index=freqs.index[unique])


def pretrain_committee(features: FeatureTable, labels: pd.Series, algorithms, member_params,
                       n_splits: int = 5, test_size: float = 0.2, seed: int = 1987) -> SimCommittee:
    """Members trained like deam_classifier: GroupShuffleSplit by song, member k on split k.

    The scaler is fitted on all training songs' rows (the committee's one scaler); member k sees
    the training part of split k.
    """
    songs = [s for s in labels.index if features.has(s)]
    if len(songs) < 5:
        raise MERError(f"pre-training: only {len(songs)} labeled songs with features, expected at least 5")
    X, y = rows_for_songs(features, songs, labels)
    _, offsets = features.gather(songs)
    groups = np.repeat(np.arange(len(songs)), np.diff(offsets))
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X).astype(np.float32)
    splitter = GroupShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    members = []
    for algorithm in algorithms:
        for train, _ in splitter.split(Xs, y, groups):
            members.append((algorithm, _new_member(algorithm, member_params).fit(Xs[train], y[train])))
    return SimCommittee(members, scaler)


# --- configuration -------------------------------------------------------------------------
@dataclass
class ExperimentConfig:
    min_annotations: int = 80
    modes: list = field(default_factory=lambda: list(MODES))
    balanced: bool = False
    queries: list = field(default_factory=lambda: [4])
    iterations: list = field(default_factory=lambda: [15])
    updates: list = field(default_factory=lambda: ["batch"])
    repeats: int = 3
    seed: int = 1987
    test_size: float = 0.15
    pretrain: str | None = "leave-user-out"
    algorithms: list = field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    n_splits: int = 5
    pretrain_test_size: float = 0.2
    member_params: dict = field(default_factory=dict)
    users: list | None = None
    crowd_member: bool = False  # add the crowd-aware members (trompa_mer.crowd), pre-trained per user
    crowd_variant: str = "plain"  # a key of trompa_mer.crowd.CROWD_VARIANTS
    max_annotations: int | None = None  # only users with at most this many songs (a development set)

    def validate(self):
        if not self.modes or any(m not in MODES for m in self.modes):
            raise MERError(f"modes: expected some of {', '.join(MODES)}, got {self.modes}")
        if not self.updates or any(u not in UPDATES for u in self.updates):
            raise MERError(f"update: expected batch and/or cumulative, got {self.updates}")
        if len(self.queries) != len(self.iterations):
            raise MERError(f"-q/-e: give as many query counts as iteration counts "
                           f"(got {len(self.queries)} and {len(self.iterations)})")
        if any(int(v) < 1 for v in [*self.queries, *self.iterations]) or self.repeats < 1:
            raise MERError("-q, -e and --repeats: expected positive whole numbers")
        if not 0 < self.test_size < 1:
            raise MERError(f"test size: expected a fraction between 0 and 1, got {self.test_size}")
        from .crowd import variant_options

        variant_options(self.crowd_variant)
        if self.max_annotations is not None and self.max_annotations < self.min_annotations:
            raise MERError(f"--max-annotations ({self.max_annotations}) is below --min-annotations "
                           f"({self.min_annotations})")
        if len(set(self.modes)) != len(self.modes) or len(set(self.updates)) != len(self.updates):
            raise MERError("modes and update strategies: each at most once")

    def configs(self) -> list[tuple[str, int, int]]:
        return [(f"q{q}x{e}", int(q), int(e)) for q, e in zip(self.queries, self.iterations)]

    def fingerprint(self) -> dict:
        """What must match for a resumed run to continue the same experiment."""
        return json.loads(json.dumps(asdict(self), default=str))


@dataclass
class Context:
    """Everything a job needs; shipped once to each worker."""

    config: ExperimentConfig
    annotations: pd.DataFrame
    features: FeatureTable
    committee: SimCommittee | None = None
    key: str = ""


def _seed(*parts) -> np.random.SeedSequence:
    """A seed from the base seed and names: crc32, because Python's str hash changes per process."""
    return np.random.SeedSequence([zlib.crc32(str(p).encode()) if not isinstance(p, int) else p
                                   for p in parts])


def eligible_users(annotations: pd.DataFrame, features: FeatureTable, min_annotations: int,
                   max_annotations: int | None = None) -> list:
    with_features = annotations[annotations["song"].map(features.has)]
    counts = with_features.groupby("user").size()
    keep = counts >= min_annotations
    if max_annotations is not None:
        keep &= counts <= max_annotations
    return sorted(counts.index[keep].tolist())


def user_split(songs, seed: int, user, repeat: int, test_size: float) -> tuple[list, list]:
    """The user's pool/test split for one repeat (identical for every mode and update)."""
    songs = sorted(songs)
    state = int(_seed(seed, "split", user, repeat).generate_state(1)[0])
    pool, test = train_test_split(songs, test_size=test_size, random_state=state)
    return sorted(pool), sorted(test)


def _f1(y_true, proba) -> tuple[float, float]:
    """(weighted F1, macro F1) of the argmax predictions, as sklearn's f1_score computes them
    (labels present in truth or prediction, zero_division=0).

    Written out because f1_score's input validation costs ~25 ms per call and the benchmark
    makes ~100,000 calls; tests check it against sklearn.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(proba).argmax(axis=1)
    cm = np.bincount(y_true * N_CLASSES + y_pred, minlength=N_CLASSES ** 2).reshape(N_CLASSES, N_CLASSES)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(N_CLASSES), where=denom > 0)
    present = denom > 0
    macro = float(f1[present].mean()) if present.any() else 0.0
    weighted = float((f1 * support).sum() / support.sum()) if support.sum() else 0.0
    return weighted, macro


# --- one user ------------------------------------------------------------------------------
class _UserData:
    """A user's labels, crowd table and scaled feature rows (pool + test) for one repeat."""

    def __init__(self, ctx: Context, user, committee: SimCommittee | None):
        ann = ctx.annotations
        mine = ann[(ann["user"] == user) & ann["song"].map(ctx.features.has)]
        self.labels = dict(zip(mine["song"], mine["quadrant"].astype(int)))
        self.songs = sorted(self.labels)
        # the simulated user's own labels never reach the human consensus
        self.crowd = human_consensus(ann, exclude_user=user)
        others = ann[ann["user"] != user]
        self.crowd_default = int(others["quadrant"].mode().min()) if len(others) else 0
        X, self.offsets = ctx.features.gather(self.songs)
        self.X_raw = X
        self.position = {s: i for i, s in enumerate(self.songs)}
        self.X_scaled = committee.transform(X) if committee is not None else None
        self.song_input = None
        self.votes = None
        if committee is not None and committee.has_crowd():
            from .crowd import ListenerVotes, crowd_features, uses_listener_weights

            lengths = np.diff(self.offsets)[:, None]
            self.audio = np.add.reduceat(self.X_scaled, self.offsets[:-1], axis=0) / lengths
            # crowd features of the user's songs: the user's own labels are left out
            self.song_input = np.hstack([crowd_features(ann, self.songs, exclude_users=[user]), self.audio])
            if uses_listener_weights(ctx.config.crowd_variant):
                self.votes = ListenerVotes(ann, self.songs, user)

    def crowd_input(self, asked):
        """The crowd-aware members' input rows of every song after the answers to `asked`."""
        if self.votes is None or not asked:
            return self.song_input
        answered = [self.position[s] for s in asked]
        block = self.votes.crowd_block(answered, [self.labels[s] for s in asked])
        return np.hstack([block, self.audio])

    def rows(self, songs):
        """Scaled rows and their song labels for `songs`."""
        idx = [self.position[s] for s in songs]
        parts = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx]
        rows = np.concatenate(parts) if parts else np.zeros(0, dtype=int)
        y = np.repeat([self.labels[s] for s in songs], [len(p) for p in parts]).astype(np.int64)
        return rows, y


MIN_PRETRAIN_SONGS = 10


def pretraining_labels(annotations: pd.DataFrame, user, features: FeatureTable) -> pd.Series:
    """Leave-user-out labels: the songs the user did not annotate (with features), each labeled by
    the other listeners' majority quadrant; ties dropped."""
    theirs = set(annotations.loc[annotations["user"] == user, "song"])
    crowd = human_consensus(annotations[~annotations["song"].isin(theirs)], exclude_user=user)
    labels = majority_labels(crowd)
    return labels[[features.has(s) for s in labels.index]]


def pretrain_for_user(ctx: Context, user) -> SimCommittee:
    """The leave-user-out committee of one user (plus its crowd-aware members if asked)."""
    cfg = ctx.config
    if ctx.committee is not None:
        committee = ctx.committee
    else:
        labels = pretraining_labels(ctx.annotations, user, ctx.features)
        committee = pretrain_committee(ctx.features, labels, cfg.algorithms, cfg.member_params,
                                       cfg.n_splits, cfg.pretrain_test_size, cfg.seed)
    if not cfg.crowd_member:
        return committee
    from .crowd import pretrain_crowd_members, variant_options

    features = ctx.features
    scaled = committee.transform(features.X)
    lengths = np.diff(features.offsets)[:, None]
    audio = np.add.reduceat(scaled, features.offsets[:-1], axis=0) / lengths
    song_audio = dict(zip(features.song_ids.tolist(), audio))
    crowd = pretrain_crowd_members(ctx.annotations, song_audio, user, cfg.n_splits, cfg.pretrain_test_size, cfg.seed,
                                   **variant_options(cfg.crowd_variant))
    return SimCommittee([*committee.members, *[("crowd", m) for m in crowd]], committee.scaler)


def _song_rows(data: "_UserData", songs):
    idx = [data.position[s] for s in songs]
    parts = [np.arange(data.offsets[i], data.offsets[i + 1]) for i in idx]
    rows = np.concatenate(parts) if parts else np.zeros(0, dtype=int)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return rows, offsets


def _scores_by_algorithm(committee: SimCommittee, proba: np.ndarray, y_true) -> dict:
    """F1 per algorithm (mean of its members' probabilities) and for the whole committee."""
    algorithms = [a for a, _ in committee.members]
    out = {}
    for algorithm in committee.algorithms():
        sel = [k for k, a in enumerate(algorithms) if a == algorithm]
        out[algorithm] = _f1(y_true, machine_consensus(proba[sel]))
    # "committee" stays the audio committee; "full" weighs the two sources equally (a plain mean
    # over members would give the 15 audio members three times the 5 crowd members' say)
    audio_index = committee.audio_index()
    audio = machine_consensus(proba[audio_index])
    out[COMMITTEE] = _f1(y_true, audio)
    if committee.has_crowd():
        crowd_index = [k for k in range(len(algorithms)) if k not in set(audio_index)]
        out[FULL] = _f1(y_true, 0.5 * audio + 0.5 * machine_consensus(proba[crowd_index]))
    return out


def simulate_user_mode(ctx: Context, user, mode: str, pretrained: SimCommittee | None = None) -> pd.DataFrame:
    """Every repeat x update x (q, e) simulation of one user in one query mode."""
    cfg = ctx.config
    if pretrained is None:
        pretrained = pretrain_for_user(ctx, user)
    data = _UserData(ctx, user, pretrained)
    all_rows, all_offsets = _song_rows(data, data.songs)
    audio = pretrained.audio_index()  # mc/mix and balanced queries follow the audio committee
    records = []
    for repeat in range(cfg.repeats):
        pool, test = user_split(data.songs, cfg.seed, user, repeat, cfg.test_size)
        pool_idx = np.asarray([data.position[s] for s in pool])
        test_idx = np.asarray([data.position[s] for s in test])
        y_test = np.asarray([data.labels[s] for s in test])
        n_crowd = int(sum(s in data.crowd.index for s in test))
        for update in cfg.updates:
            for config_name, q, e in cfg.configs():
                # not seeded by the update strategy: in rand mode batch and cumulative see the same queries
                rng = np.random.default_rng(_seed(cfg.seed, "rand", user, repeat, mode, config_name))
                committee = pretrained.copy()
                asked: list = []
                current_input = data.song_input  # the crowd members' rows after the answers so far
                base = {"user": user, "repeat": repeat, "mode": mode, "update": update,
                        "config": config_name, "queries": q, "n_pool": len(pool),
                        "n_test": len(test), "n_test_crowd": n_crowd}
                for iteration in range(0, e + 1):
                    if iteration > 0:
                        asked_set = set(asked)
                        keep = np.array([s not in asked_set for s in pool])
                        remaining = [s for s, k in zip(pool, keep) if k]
                        if not remaining:
                            break
                        machine = machine_consensus(proba[audio][:, pool_idx[keep]])
                        scores = mode_scores(mode, remaining, machine_proba=machine,
                                             human_freqs=data.crowd, rng=rng)
                        chosen = select_queries(remaining, scores, q, asked=asked, balanced=cfg.balanced,
                                                predicted=machine.argmax(axis=1))
                        asked.extend(chosen)
                        if update == "batch":
                            batch = chosen
                        else:
                            committee = pretrained.copy()
                            batch = asked
                        rows, y = data.rows(batch)
                        song_input = song_y = None
                        current_input = data.crowd_input(asked)  # once per round: update and predict
                        if data.song_input is not None:
                            song_input = current_input[[data.position[s] for s in batch]]
                            song_y = np.asarray([data.labels[s] for s in batch], dtype=np.int64)
                        committee.update(data.X_scaled[rows], y, song_input, song_y)
                    # one prediction of every song of the user serves the test F1 and the next query
                    proba = committee.song_proba(data.X_scaled[all_rows], all_offsets, current_input)
                    counts = np.bincount([data.labels[s] for s in asked], minlength=N_CLASSES)
                    for algorithm, (fw, fm) in _scores_by_algorithm(committee, proba[:, test_idx], y_test).items():
                        records.append({**base, "algorithm": algorithm, "iteration": iteration,
                                        "n_annotations": len(asked), "f1_weighted": fw, "f1_macro": fm,
                                        **dict(zip(COUNT_COLUMNS, counts.tolist()))})
    frame = pd.DataFrame.from_records(records)
    return frame.reindex(columns=RESULT_COLUMNS)


def reference_rows(ctx: Context, user) -> pd.DataFrame:
    """The crowd baseline and the own-labels model per repeat, on each repeat's test songs."""
    cfg = ctx.config
    data = _UserData(ctx, user, None)
    crowd_label = majority_any(data.crowd)
    records = []
    for repeat in range(cfg.repeats):
        pool, test = user_split(data.songs, cfg.seed, user, repeat, cfg.test_size)
        y_test = np.asarray([data.labels[s] for s in test])
        n_crowd = int(sum(s in data.crowd.index for s in test))
        base = {"user": user, "repeat": repeat, "update": "", "config": "", "queries": 0,
                "iteration": 0, "n_pool": len(pool), "n_test": len(test), "n_test_crowd": n_crowd}
        predicted = np.asarray([crowd_label.get(s, data.crowd_default) for s in test])
        proba = np.eye(N_CLASSES)[predicted]
        fw, fm = _f1(y_test, proba)
        counts = dict(zip(COUNT_COLUMNS, [0] * N_CLASSES))
        records.append({**base, "mode": "crowd", "algorithm": "crowd", "n_annotations": 0,
                        "f1_weighted": fw, "f1_macro": fm, **counts})
        # own: members trained only on this user's pool labels, with a scaler of those songs
        X_pool, y_pool = rows_for_songs(ctx.features, pool, data.labels)
        scaler = StandardScaler().fit(X_pool)
        members = [(a, _new_member(a, cfg.member_params).fit(scaler.transform(X_pool).astype(np.float32), y_pool))
                   for a in cfg.algorithms]
        own = SimCommittee(members, scaler)
        X_test, offsets = ctx.features.gather(test)
        song_proba = own.song_proba(own.transform(X_test), offsets)
        pool_counts = np.bincount([data.labels[s] for s in pool], minlength=N_CLASSES)
        for k, algorithm in enumerate([a for a, _ in members] + [COMMITTEE]):
            p = song_proba.mean(axis=0) if algorithm == COMMITTEE else song_proba[k]
            fw, fm = _f1(y_test, p)
            records.append({**base, "mode": "own", "algorithm": algorithm, "n_annotations": len(pool),
                            "f1_weighted": fw, "f1_macro": fm,
                            **dict(zip(COUNT_COLUMNS, pool_counts.tolist()))})
    return pd.DataFrame.from_records(records).reindex(columns=RESULT_COLUMNS)


def majority_any(freqs: pd.DataFrame) -> dict:
    """Majority quadrant of every song in a consensus table (a tie goes to the lower quadrant)."""
    if freqs.empty:
        return {}
    values = freqs[list(QUADRANTS)].to_numpy(dtype=float)
    return dict(zip(freqs.index, values.argmax(axis=1).tolist()))


def _single_threaded():
    """One thread per task: tasks run in parallel instead, and XGBoost's default of every core
    makes each small DMatrix cost tens of milliseconds of OpenMP start-up on a busy machine.
    Members validate their inputs (finite, 2-D) themselves; sklearn's re-validation on every
    tiny update/predict is a large share of the run time."""
    import contextlib

    import sklearn
    from threadpoolctl import threadpool_limits

    stack = contextlib.ExitStack()
    stack.enter_context(threadpool_limits(limits=1))
    stack.enter_context(sklearn.config_context(skip_parameter_validation=True, assume_finite=True))
    return stack


def run_pretrain(ctx: Context, user) -> SimCommittee:
    with _single_threaded():
        return pretrain_for_user(ctx, user)


def run_job(ctx: Context, job: tuple, pretrained: SimCommittee | None = None) -> pd.DataFrame:
    """One user x one mode (or the user's reference points)."""
    user, mode = job
    with _single_threaded():
        if mode == "reference":
            return reference_rows(ctx, user)
        return simulate_user_mode(ctx, user, mode, pretrained)


# --- the experiment: jobs, parts, resume ---------------------------------------------------
def _part_name(job) -> str:
    user, mode = job
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(user))[:40]
    return f"{safe}-{zlib.crc32(str(user).encode()):08x}__{mode}.csv"


def _write_part(parts_dir: Path, job, frame: pd.DataFrame) -> None:
    with atomic.atomic_open(parts_dir / _part_name(job), "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)


def read_results(out_dir) -> pd.DataFrame:
    """All finished parts of a run, as one tidy table."""
    parts = sorted((Path(out_dir) / "parts").glob("*.csv"))
    if not parts:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    frames = [pd.read_csv(p, dtype={"user": str, "update": str, "config": str}, keep_default_na=False,
                          na_values=[""]) for p in parts]
    table = pd.concat(frames, ignore_index=True)
    for col in ("update", "config"):
        table[col] = table[col].fillna("")
    return table


def run_experiment(annotations: pd.DataFrame, features: FeatureTable, config: ExperimentConfig, out_dir,
                   committee: SimCommittee | None = None, jobs: int = 1, backend: str = "joblib",
                   scheduler: str | None = None, progress: bool = True, max_jobs: int | None = None,
                   plots: bool = True) -> dict:
    """Run (or resume) an experiment into `out_dir`; returns the summary's paths and counts.

    max_jobs: stop after that many new jobs (to test resuming; None = all).
    """
    config.validate()
    if committee is None and config.pretrain != "leave-user-out":
        raise MERError("committee: give a pre-trained committee or --pretrain leave-user-out")
    if committee is not None:
        config.pretrain = None
    out_dir = Path(out_dir)
    parts_dir = out_dir / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    annotations = prepare_annotations(annotations)
    if committee is not None and features.X.shape[1] != len(committee.scaler.mean_ if committee.scaler is not None
                                                           else features.feature_names):
        raise MERError(f"features: the committee expects {len(committee.scaler.mean_)} columns, "
                       f"the feature table has {features.X.shape[1]}")
    users = eligible_users(annotations, features, config.min_annotations, config.max_annotations)
    if config.users:
        missing = sorted(set(map(str, config.users)) - set(users))
        if missing:
            raise MERError(f"users: {', '.join(missing[:5])} not found with at least "
                           f"{config.min_annotations} annotated songs that have features")
        users = [u for u in users if u in set(map(str, config.users))]
    skipped = {}
    if committee is None:
        # leave-user-out needs songs the user did not annotate; a user who annotated (almost)
        # everything cannot be simulated this way and is reported, not fatal
        for user in users:
            n = len(pretraining_labels(annotations, user, features))
            if n < MIN_PRETRAIN_SONGS:
                skipped[user] = f"{n} songs for leave-user-out pre-training (< {MIN_PRETRAIN_SONGS})"
        users = [u for u in users if u not in skipped]
    if not users:
        raise MERError(f"annotations: no user has at least {config.min_annotations} annotated songs "
                       f"with features" + (" and songs left for pre-training" if skipped else ""))
    fingerprint = {"config": config.fingerprint(), "users": users,
                   "n_annotations": int(len(annotations)), "n_feature_columns": int(features.X.shape[1])}
    run_file = out_dir / "run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != fingerprint:
            raise MERError(f"{run_file}: this folder holds a run with other settings or data; "
                           f"choose another output folder or delete it")
    else:
        atomic.write_json(run_file, fingerprint)
    songs = sorted(set(annotations["song"]))
    ctx = Context(config, annotations, features.subset(songs), committee,
                  key=str(zlib.crc32(json.dumps(fingerprint, sort_keys=True).encode())))
    all_jobs = [(u, m) for u in users for m in ["reference", *config.modes]]
    done = {p.name for p in parts_dir.glob("*.csv")}
    todo = [j for j in all_jobs if _part_name(j) not in done]
    if max_jobs is not None:
        todo = todo[:max_jobs]
    with _Executor(ctx, jobs, backend, scheduler) as executor:
        committees = {}
        if ctx.committee is None or config.crowd_member:
            pending = sorted({u for u, m in todo if m != "reference"})
            for user, committee_of_user in _progress(executor.map(run_pretrain, pending), len(pending),
                                                     "pre-training", progress):
                committees[user] = committee_of_user
        tasks = [(job, committees.get(job[0])) for job in todo]
        for (job, _), frame in _progress(executor.map(_run_task, tasks), len(tasks), "user x mode", progress):
            _write_part(parts_dir, job, frame)
    finished = {p.name for p in parts_dir.glob("*.csv")}
    complete = all(_part_name(j) in finished for j in all_jobs)
    result = {"users": len(users), "skipped_users": skipped, "jobs": len(all_jobs), "jobs_run": len(todo), "complete": complete}
    if complete:
        table = read_results(out_dir)
        with atomic.atomic_open(out_dir / "results.csv", "w", encoding="utf-8", newline="") as handle:
            table.to_csv(handle, index=False)
        result.update(write_report(table, out_dir, plots=plots))
    return result


def _run_task(ctx: Context, task):
    job, pretrained = task
    return run_job(ctx, job, pretrained)


def _progress(iterable, total, desc, enabled):
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="job", disable=not enabled) as bar:
        for item in iterable:
            yield item
            bar.update()


class _Executor:
    """fn(ctx, item) over items, results as they finish: in this process, joblib or Dask."""

    def __init__(self, ctx, jobs: int, backend: str, scheduler):
        if backend not in ("joblib", "dask", "serial"):
            raise MERError(f"backend: expected joblib or dask, got {backend!r}")
        if backend == "dask" and not scheduler:
            raise MERError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        self.ctx, self.jobs, self.backend, self.scheduler = ctx, jobs, backend, scheduler
        self.client = self.ctx_ref = None

    def __enter__(self):
        if self.backend == "dask":
            from dask.distributed import Client

            own = not isinstance(self.scheduler, Client)
            self.client = Client(self.scheduler) if own else self.scheduler
            self._own_client = own
            self.ctx_ref = self.client.scatter(self.ctx, broadcast=True)
        return self

    def __exit__(self, *exc):
        if self.client is not None and self._own_client:
            self.client.close()

    def map(self, fn, items):
        items = list(items)
        if self.backend == "dask":
            from dask.distributed import as_completed

            futures = {self.client.submit(fn, self.ctx_ref, item, pure=False): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                yield items[futures[future]], future.result()
        elif self.jobs > 1 and len(items) > 1:
            from joblib import Parallel, delayed

            def tagged(i, item):
                return i, fn(self.ctx, item)

            results = Parallel(n_jobs=self.jobs, return_as="generator_unordered")(
                delayed(tagged)(i, item) for i, item in enumerate(items))
            for i, result in results:
                yield items[i], result
        else:
            for item in items:
                yield item, fn(self.ctx, item)


# --- summary, statistics, plots ------------------------------------------------------------
def _auc(curve: np.ndarray) -> float:
    """Area under a learning curve over iterations scaled to [0, 1] (so it reads as a mean F1)."""
    if len(curve) < 2:
        return float(curve[0]) if len(curve) else float("nan")
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


def per_user_curves(table: pd.DataFrame, metric: str = "f1_weighted") -> pd.DataFrame:
    """Mean over repeats of each user's curve: rows (config, update, algorithm, mode, user) x iteration."""
    sims = table[~table["mode"].isin(["crowd", "own"])]
    return (sims.groupby(["config", "update", "algorithm", "mode", "user", "iteration"])[metric].mean()
            .unstack("iteration"))


def _sd(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """One-sided paired t-test and Wilcoxon signed-rank (a > b): (t, p_t, w, p_w)."""
    from scipy import stats

    if len(a) < 2:
        return (float("nan"),) * 4
    with np.errstate(all="ignore"):  # identical samples give NaN, which is the honest answer
        t = stats.ttest_rel(a, b, alternative="greater")
    import warnings

    try:
        with warnings.catch_warnings():  # all-zero differences: NaN is the honest answer
            warnings.simplefilter("ignore", RuntimeWarning)
            w = stats.wilcoxon(a, b, alternative="greater")
        w_stat, w_p = float(w.statistic), float(w.pvalue)
    except ValueError:  # every difference zero
        w_stat, w_p = float("nan"), float("nan")
    return float(t.statistic), float(t.pvalue), w_stat, w_p


def summarize(table: pd.DataFrame, metric: str = "f1_weighted") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per config x update x mode x algorithm, paired tests)."""
    curves = per_user_curves(table, metric)
    macro = per_user_curves(table, "f1_macro")
    refs = table[table["mode"].isin(["crowd", "own"])].groupby(["mode", "algorithm", "user"])[metric].mean()
    crowd = refs.loc["crowd", "crowd"] if ("crowd", "crowd") in refs.index.droplevel("user") else None
    rows, tests = [], []
    for (config, update, algorithm), block in curves.groupby(level=["config", "update", "algorithm"]):
        finals, aucs = {}, {}
        for mode, user_curves in block.groupby(level="mode"):
            values = user_curves.to_numpy(dtype=float)
            last = np.array([c[~np.isnan(c)][-1] for c in values])
            start = values[:, 0]
            auc = np.array([_auc(c[~np.isnan(c)]) for c in values])
            slopes = np.array([np.polyfit(np.arange((~np.isnan(c)).sum()), c[~np.isnan(c)], 1)[0]
                               if (~np.isnan(c)).sum() > 1 else 0.0 for c in values])
            m_values = macro.loc[(config, update, algorithm, mode)].to_numpy(dtype=float)
            m_last = np.array([c[~np.isnan(c)][-1] for c in m_values])
            users = user_curves.index.get_level_values("user")
            finals[mode] = pd.Series(last, index=users)
            aucs[mode] = pd.Series(auc, index=users)
            _, p_gain, _, p_gain_w = _paired(last, start)
            row = {"config": config, "update": update, "mode": mode, "algorithm": algorithm,
                   "n_users": len(users), "f1_start_mean": start.mean(), "f1_start_sd": _sd(start),
                   "f1_end_mean": last.mean(), "f1_end_sd": _sd(last),
                   "f1_macro_start_mean": m_values[:, 0].mean(), "f1_macro_end_mean": m_last.mean(),
                   "auc_mean": auc.mean(), "auc_sd": _sd(auc),
                   # a least-squares fit to a flat curve gives about +-1e-17, not 0: a rise
                   # is more than rounding (one test song moves F1 by far more than 1e-12)
                   "n_positive_slope": int((slopes > 1e-12).sum()),
                   "p_end_gt_start_t": p_gain, "p_end_gt_start_wilcoxon": p_gain_w}
            if crowd is not None:
                c = crowd.reindex(users).to_numpy(dtype=float)
                row["crowd_mean"] = float(np.nanmean(c))
                row["n_users_above_crowd"] = int((last > c).sum())
                _, row["p_end_gt_crowd_t"], _, row["p_end_gt_crowd_wilcoxon"] = _paired(last, c)
            own = refs.get(("own", algorithm))
            if own is not None:
                row["own_mean"] = float(own.reindex(users).mean())
            rows.append(row)
        modes = list(finals)
        pairs = [(a, b) for a in modes for b in modes if a != b]
        for measure, values in (("f1_end", finals), ("auc", aucs)):
            for a, b in pairs:
                common = values[a].index.intersection(values[b].index)
                t, p_t, w, p_w = _paired(values[a][common].to_numpy(), values[b][common].to_numpy())
                tests.append({"config": config, "update": update, "algorithm": algorithm, "measure": measure,
                              "a": a, "b": b, "mean_diff": float((values[a][common] - values[b][common]).mean()),
                              "t": t, "p_t": p_t, "p_t_bonferroni": min(1.0, p_t * len(pairs)) if p_t == p_t else p_t,
                              "wilcoxon": w, "p_wilcoxon": p_w,
                              "p_wilcoxon_bonferroni": min(1.0, p_w * len(pairs)) if p_w == p_w else p_w})
    # algorithms against each other where crowd-aware members ran (final F1, per mode)
    finals_all = curves.apply(lambda c: c.dropna().iloc[-1], axis=1)
    pairs = [("crowd", COMMITTEE), (FULL, COMMITTEE), (FULL, "crowd"), ("crowd", FULL)]
    for (config, update, mode), block in finals_all.groupby(level=["config", "update", "mode"]):
        wide = block.unstack("algorithm")
        for a, b in pairs:
            if a in wide and b in wide:
                both = wide[[a, b]].dropna()
                t, p_t, w, p_w = _paired(both[a].to_numpy(), both[b].to_numpy())
                tests.append({"config": config, "update": update, "algorithm": f"{a}>{b}",
                              "measure": f"f1_end[{mode}]", "a": a, "b": b,
                              "mean_diff": float((both[a] - both[b]).mean()), "t": t, "p_t": p_t,
                              "p_t_bonferroni": p_t, "wilcoxon": w, "p_wilcoxon": p_w,
                              "p_wilcoxon_bonferroni": p_w})
    # update strategies against each other, per config x mode x algorithm (final F1)
    if curves.index.get_level_values("update").nunique() == 2:
        finals = curves.apply(lambda c: c.dropna().iloc[-1], axis=1)
        for (config, algorithm, mode), block in finals.groupby(level=["config", "algorithm", "mode"]):
            wide = block.unstack("update").dropna()
            for a, b in (("cumulative", "batch"), ("batch", "cumulative")):
                t, p_t, w, p_w = _paired(wide[a].to_numpy(), wide[b].to_numpy())
                tests.append({"config": config, "update": f"{a}>{b}", "algorithm": algorithm,
                              "measure": f"f1_end[{mode}]", "a": a, "b": b,
                              "mean_diff": float((wide[a] - wide[b]).mean()), "t": t, "p_t": p_t,
                              "p_t_bonferroni": min(1.0, p_t * 2) if p_t == p_t else p_t, "wilcoxon": w,
                              "p_wilcoxon": p_w, "p_wilcoxon_bonferroni": min(1.0, p_w * 2) if p_w == p_w else p_w})
    return pd.DataFrame(rows), pd.DataFrame(tests)


def _markdown(summary: pd.DataFrame, tests: pd.DataFrame, refs: pd.DataFrame) -> str:
    lines = ["# Simulation summary (weighted F1 on each user's test songs; per user the mean over repeats)", ""]
    lines.append("## Reference points (mean ± sd over users)")
    lines.append("")
    lines.append("| reference | algorithm | weighted F1 | macro F1 |")
    lines.append("|---|---|---|---|")
    for (mode, algorithm), block in refs.groupby(["mode", "algorithm"]):
        per_user = block.groupby("user")[["f1_weighted", "f1_macro"]].mean()
        lines.append(f"| {mode} | {algorithm} | {per_user.f1_weighted.mean():.3f} ± {per_user.f1_weighted.std():.3f}"
                     f" | {per_user.f1_macro.mean():.3f} |")
    lines.append("")
    lines.append("## Learning curves")
    lines.append("")
    lines.append("| config | update | mode | algorithm | F1 start | F1 end | macro start | macro end | AUC | "
                 "users slope>0 | p(end>start) t | users > crowd |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for _, r in summary.sort_values(["config", "update", "algorithm", "mode"]).iterrows():
        lines.append(f"| {r['config']} | {r['update']} | {r['mode']} | {r['algorithm']} | "
                     f"{r['f1_start_mean']:.3f} ± {r['f1_start_sd']:.3f} | {r['f1_end_mean']:.3f} ± {r['f1_end_sd']:.3f} | "
                     f"{r['f1_macro_start_mean']:.3f} | {r['f1_macro_end_mean']:.3f} | {r['auc_mean']:.3f} | "
                     f"{r['n_positive_slope']}/{r['n_users']} | {r['p_end_gt_start_t']:.3g} | "
                     f"{r.get('n_users_above_crowd', float('nan'))} |")
    lines.append("")
    lines.append("## Paired one-sided tests, Bonferroni-corrected (a > b; lowest p first, p_t < .1 shown)")
    lines.append("")
    lines.append("| config | update | algorithm | measure | a | b | mean diff | p t (bonf) | p Wilcoxon (bonf) |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    shown = tests[tests["p_t_bonferroni"] < 0.1].sort_values("p_t_bonferroni") if len(tests) else tests
    for _, r in shown.iterrows():
        lines.append(f"| {r['config']} | {r['update']} | {r['algorithm']} | {r['measure']} | {r['a']} | {r['b']} | "
                     f"{r['mean_diff']:+.3f} | {r['p_t_bonferroni']:.3g} | {r['p_wilcoxon_bonferroni']:.3g} |")
    if shown.empty:
        lines.append("| (none) | | | | | | | | |")
    return "\n".join(lines) + "\n"


def plot_curves(table: pd.DataFrame, out_dir, metric: str = "f1_weighted") -> list[str]:
    """One PNG per algorithm: a panel per config x update, a line per mode, the two references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sims = table[~table["mode"].isin(["crowd", "own"])]
    refs = table[table["mode"].isin(["crowd", "own"])]
    crowd = refs[refs["mode"] == "crowd"].groupby("user")[metric].mean().mean()
    written = []
    panels = sims[["config", "update"]].drop_duplicates().sort_values(["config", "update"]).values.tolist()
    for algorithm in sorted(sims["algorithm"].unique()):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False, sharey=True)
        own = refs[(refs["mode"] == "own") & (refs["algorithm"] == algorithm)].groupby("user")[metric].mean().mean()
        for ax, (config, update) in zip(axes[0], panels):
            block = sims[(sims["algorithm"] == algorithm) & (sims["config"] == config) & (sims["update"] == update)]
            for mode, m in block.groupby("mode"):
                per_user = m.groupby(["user", "iteration"]).agg(f1=(metric, "mean"), n=("n_annotations", "mean"))
                curve = per_user.groupby("iteration").mean()
                ax.plot(curve["n"], curve["f1"], marker="o", markersize=3, label=mode)
            ax.axhline(crowd, color="black", linestyle="--", linewidth=1, label="crowd baseline")
            if own == own:
                ax.axhline(own, color="grey", linestyle=":", linewidth=1, label="own labels only")
            ax.set_title(f"{algorithm}: {config}, {update}")
            ax.set_xlabel("annotations given")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(metric.replace("_", " "))
        axes[0][-1].legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = out_dir / f"learning_curves_{algorithm}.png"
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(str(path))
    return written


def write_report(table: pd.DataFrame, out_dir, plots: bool = True) -> dict:
    out_dir = Path(out_dir)
    summary, tests = summarize(table)
    refs = table[table["mode"].isin(["crowd", "own"])]
    with atomic.atomic_open(out_dir / "summary.csv", "w", encoding="utf-8", newline="") as handle:
        summary.to_csv(handle, index=False)
    with atomic.atomic_open(out_dir / "tests.csv", "w", encoding="utf-8", newline="") as handle:
        tests.to_csv(handle, index=False)
    atomic.write_text(out_dir / "summary.md", _markdown(summary, tests, refs))
    written = plot_curves(table, out_dir / "plots") if plots else []
    return {"summary": str(out_dir / "summary.csv"), "tests": str(out_dir / "tests.csv"),
            "report": str(out_dir / "summary.md"), "plots": written}
