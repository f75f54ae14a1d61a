"""One user's simulation: the committee under simulation, the rows of one user x mode and the
user's reference points, and the F1 they are scored with."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import StandardScaler

from ..committee import Committee, Songs
from ..consensus import human_consensus, machine_consensus, mode_scores, select_queries
from ..errors import MERError
from ..quadrants import N_CLASSES, QUADRANTS, Labels
from .. import strategies as strat
from .config import ExperimentConfig, refuse_audio_pretraining
from .data import (FeatureTable, majority_any, pretraining_labels, pretraining_targets, rows_for_songs,
                   seed_sequence, user_split)

COMMITTEE = "committee"  # algorithm name of the (audio) committee's rows
FULL = "full"  # audio committee and crowd-aware members weighted equally, when those run
COUNT_COLUMNS = [f"n_{q}" for q in QUADRANTS]
RESULT_COLUMNS = ["user", "repeat", "mode", "update", "config", "queries", "algorithm", "iteration",
                  "n_annotations", "f1_weighted", "f1_macro", *COUNT_COLUMNS,
                  "n_pool", "n_test", "n_test_crowd"]
# Added after RESULT_COLUMNS when the committee has arousal/valence regression members: on the
# test songs, the song-level RMSE and Kendall's tau-b of the regression members' mean
# prediction against the listener's own values (NaN on the rows of classifiers, and where
# undefined: no test song with values, a constant prediction or truth)
AV_METRICS = ["rmse_arousal", "rmse_valence", "tau_arousal", "tau_valence"]


def regression_algorithms(algorithms) -> list[str]:
    from ..regression import REGRESSION_TYPES

    return [a for a in algorithms if a in REGRESSION_TYPES]


def result_columns(ctx: "Context") -> list[str]:
    """RESULT_COLUMNS, plus AV_METRICS when the experiment has regression members (a given
    committee's, or among the algorithms pre-trained per user and for the "own" reference)."""
    has_av = bool(regression_algorithms(ctx.config.algorithms)) or (
        ctx.committee is not None and bool(ctx.committee.of_target("av")))
    return RESULT_COLUMNS + (AV_METRICS if has_av else [])


# --- the committee under simulation --------------------------------------------------------
# The simulator runs the package's Committee. Two things it does its own way, as the recorded
# experiment tables were computed: each listener's rows are standardized once with sklearn's
# StandardScaler.transform (float32 arithmetic; Committee.transform computes in float64) and
# handed to the members as prepared inputs (Songs.prepared), so members are scored one by one;
# and the crowd members' rows are rebuilt after each answer (ListenerVotes).
CROWD_KIND = "crowd+features"


def standardize(committee: Committee, X) -> np.ndarray:
    return committee.scaler.transform(X).astype(np.float32)


def simulatable(committee: Committee, audio=None, songs=None) -> Committee:
    """`committee` if the simulator can run it: members that read feature rows, crowd members,
    and audio members when `audio` (song id -> 16 kHz samples, e.g. audio_cache.AudioCache) is
    given and holds every one of `songs` (when given)."""
    audio_names = [committee.members[i][0] for i in committee.of_kind("audio")]
    if audio_names and audio is None:
        raise MERError(f"committee: audio members {audio_names} need an audio source "
                       f"(Context(audio=...), --audio-dir DIR)")
    if audio_names and songs is not None:
        missing = [s for s in songs if s not in audio]
        if missing:
            raise MERError(f"audio: {len(missing)} songs have no audio for the audio members "
                           f"(first: {missing[0]!r})")
    return committee


def _songs(X_scaled, offsets, crowd_input=None, song_ids=None, audio=None) -> Songs:
    """A prepared batch; song ids are the rows' indices unless the committee has audio members,
    which read the real ids (`song_ids`) from the audio source `audio`."""
    prepared = {"features": X_scaled}
    if crowd_input is not None:
        prepared[CROWD_KIND] = crowd_input
    if audio is None or song_ids is None:
        song_ids = range(len(offsets) - 1)
    return Songs.from_offsets(None, offsets, list(song_ids), audio=audio, prepared=prepared)


def _new_member(algorithm, member_params):
    from ..members import make_member  # the committee helper's member registry
    from ..regression import REGRESSION_TYPES, make_regressor

    make = make_regressor if algorithm in REGRESSION_TYPES else make_member
    return make(algorithm, **dict(member_params.get(algorithm, {})))


def _fit_regressor(member, Xs, y, av, groups, train, test):
    """A regression member on the training rows that have (arousal, valence) targets; its
    predictive spread is the root mean square of its song-level residuals on the split's held-out songs
    (regression.AVRegressor.set_spread), when at least two of them have targets."""
    train = train[~np.isnan(av[train, 0])]
    if len(train) == 0:
        raise MERError(f"pre-training: the {member.algorithm} member has no song with arousal/valence "
                       f"annotations to train on (the annotations give quadrants only)")
    member.fit(Xs[train], Labels(y[train], av[train]))
    test = test[~np.isnan(av[test, 0])]
    song_of_row, index = np.unique(groups[test], return_inverse=True)
    if len(song_of_row) >= 2:
        predicted = member.predict_av(Xs[test])
        counts = np.bincount(index).astype(float)[:, None]
        means = np.stack([np.bincount(index, weights=predicted[:, j]) for j in range(2)], axis=1) / counts
        truth = np.stack([np.bincount(index, weights=av[test, j]) for j in range(2)], axis=1) / counts
        from ..regression import residual_spread

        member.set_spread(residual_spread(truth - means))
    return member


def pretrain_committee(features: FeatureTable, labels: pd.Series, algorithms, member_params,
                       n_splits: int = 5, test_size: float = 0.2, seed: int = 1987,
                       targets: pd.DataFrame | None = None) -> Committee:
    """Members trained like deam_classifier: GroupShuffleSplit by song, member k on split k.

    The scaler is fitted on all training songs' rows (the committee's one scaler); member k sees
    the training part of split k. Regression members (sgd-av, xgb-av) need `targets`
    (data.pretraining_targets: per song arousal, valence, NaN where unknown): they train on the
    same songs and splits as the classifiers, less the songs without targets.
    """
    refuse_audio_pretraining(algorithms)
    songs = [s for s in labels.index if features.has(s)]
    if len(songs) < 5:
        raise MERError(f"pre-training: only {len(songs)} labeled songs with features, expected at least 5")
    X, y = rows_for_songs(features, songs, labels)
    _, offsets = features.gather(songs)
    groups = np.repeat(np.arange(len(songs)), np.diff(offsets))
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X).astype(np.float32)
    splitter = GroupShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    av = None
    if regression_algorithms(algorithms):
        if targets is None:
            raise MERError("pre-training: regression members need arousal/valence targets")
        av = np.repeat(targets.reindex(songs).to_numpy(dtype=float), np.diff(offsets), axis=0)
    members = []
    for algorithm in algorithms:
        for k, (train, test) in enumerate(splitter.split(Xs, y, groups)):
            member = _new_member(algorithm, member_params)
            if member.target_kind == "av":
                member = _fit_regressor(member, Xs, y, av, groups, train, test)
            else:
                member.fit(Xs[train], y[train])
            members.append((f"{algorithm}_{k}", member))
    return Committee(members, scaler, features.feature_names)


# --- one user ------------------------------------------------------------------------------
@dataclass
class Context:
    """Everything a job needs; shipped once to each worker."""

    config: ExperimentConfig
    annotations: pd.DataFrame
    features: FeatureTable
    committee: Committee | None = None
    key: str = ""
    # song id -> 16 kHz samples (audio_cache.AudioCache or a dict), for a given committee's
    # audio members; None when it has none
    audio: object = None


def f1_scores(y_true, proba) -> tuple[float, float]:
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


def av_scores(truth, predicted) -> dict:
    """{rmse_arousal, rmse_valence, tau_arousal, tau_valence}: song-level RMSE and Kendall's
    tau-b (scipy.stats.kendalltau) of predicted against true (arousal, valence), over the
    songs whose truth is known (NaN rows left out). NaN where undefined: no such song (RMSE),
    fewer than two, or a constant prediction or truth (tau)."""
    import warnings

    from scipy.stats import kendalltau

    truth = np.asarray(truth, dtype=float).reshape(-1, 2)
    predicted = np.asarray(predicted, dtype=float).reshape(-1, 2)
    known = ~np.isnan(truth).any(axis=1) & ~np.isnan(predicted).any(axis=1)
    out = {}
    for j, axis in enumerate(("arousal", "valence")):
        t, p = truth[known, j], predicted[known, j]
        out[f"rmse_{axis}"] = float(np.sqrt(np.mean((p - t) ** 2))) if len(t) else float("nan")
        tau = float("nan")
        if len(t) >= 2 and np.ptp(t) > 0 and np.ptp(p) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                tau = float(kendalltau(p, t).statistic)
        out[f"tau_{axis}"] = tau
    return out


def _av_by_algorithm(committee: Committee, song_av: np.ndarray, truth) -> dict:
    """AV_METRICS per regression algorithm (mean of its members) and for the committee (the
    mean of every regression member); song_av as Committee.song_av (test songs)."""
    if not len(song_av):
        return {}
    regressors = committee.of_target("av")
    algorithms = [committee.members[i][1].algorithm for i in regressors]
    out = {}
    for algorithm in dict.fromkeys(algorithms):
        sel = [k for k, a in enumerate(algorithms) if a == algorithm]
        out[algorithm] = av_scores(truth, song_av[sel].mean(axis=0))
    out[COMMITTEE] = av_scores(truth, song_av.mean(axis=0))
    return out


class _UserData:
    """A user's labels, crowd table and scaled feature rows (pool + test) for one repeat."""

    def __init__(self, ctx: Context, user, committee: Committee | None):
        ann = ctx.annotations
        mine = ann[(ann["user"] == user) & ann["song"].map(ctx.features.has)]
        self.labels = dict(zip(mine["song"], mine["quadrant"].astype(int)))
        self.songs = sorted(self.labels)
        # the listener's own (arousal, valence) per song (NaN where unknown or not prepared)
        if "arousal" in mine.columns:
            own = dict(zip(mine["song"], mine[["arousal", "valence"]].to_numpy(dtype=float)))
            self.values = np.array([own[s] for s in self.songs]).reshape(-1, 2)
        else:
            self.values = np.full((len(self.songs), 2), np.nan)
        # the simulated user's own labels never reach the human consensus
        self.crowd = human_consensus(ann, exclude_user=user)
        others = ann[ann["user"] != user]
        self.crowd_default = int(others["quadrant"].mode().min()) if len(others) else 0
        X, self.offsets = ctx.features.gather(self.songs)
        self.X_raw = X
        self.position = {s: i for i, s in enumerate(self.songs)}
        self.X_scaled = standardize(committee, X) if committee is not None else None
        self.song_input = None
        self.votes = None
        if committee is not None and committee.of_kind(CROWD_KIND):
            from ..crowd import ListenerVotes, crowd_features, uses_listener_weights

            lengths = np.diff(self.offsets)[:, None]
            self.audio = np.add.reduceat(self.X_scaled, self.offsets[:-1], axis=0) / lengths
            # crowd features of the user's songs: the user's own labels are left out
            self.song_input = np.hstack([crowd_features(ann, self.songs, exclude_users=[user]), self.audio])
            if uses_listener_weights(ctx.config.crowd_variant):
                self.votes = ListenerVotes(ann, self.songs, user)

    def song_features(self) -> np.ndarray:
        """(songs, columns): the mean of each song's standardized rows, what the strategies that
        compare songs (density, ranked batch) read; computed once."""
        if getattr(self, "_song_features", None) is None:
            lengths = np.diff(self.offsets)[:, None]
            sums = np.add.reduceat(self.X_scaled.astype(np.float64), self.offsets[:-1], axis=0)
            self._song_features = sums / lengths
        return self._song_features

    def crowd_input(self, asked):
        """The crowd-aware members' input rows of every song after the answers to `asked`."""
        if self.votes is None or not asked:
            return self.song_input
        answered = [self.position[s] for s in asked]
        block = self.votes.crowd_block(answered, [self.labels[s] for s in asked])
        return np.hstack([block, self.audio])


def pretrain_for_user(ctx: Context, user) -> Committee:
    """The leave-user-out committee of one user (plus its crowd-aware members if asked)."""
    cfg = ctx.config
    if ctx.committee is not None:
        committee = ctx.committee
    else:
        labels = pretraining_labels(ctx.annotations, user, ctx.features)
        # regression members: the same songs and listeners' mean arousal/valence
        targets = pretraining_targets(ctx.annotations, user, labels) if regression_algorithms(cfg.algorithms) else None
        committee = pretrain_committee(ctx.features, labels, cfg.algorithms, cfg.member_params,
                                       cfg.n_splits, cfg.pretrain_test_size, cfg.seed, targets)
    if not cfg.crowd_member:
        return committee
    from ..crowd import pretrain_crowd_members, variant_options

    features = ctx.features
    scaled = standardize(committee, features.X)
    lengths = np.diff(features.offsets)[:, None]
    audio = np.add.reduceat(scaled, features.offsets[:-1], axis=0) / lengths
    song_audio = dict(zip(features.song_ids.tolist(), audio))
    crowd = pretrain_crowd_members(ctx.annotations, song_audio, user, cfg.n_splits, cfg.pretrain_test_size, cfg.seed,
                                   **variant_options(cfg.crowd_variant))
    return Committee([*committee.members, *[(f"crowd_{k}", m) for k, m in enumerate(crowd)]], committee.scaler,
                     committee.feature_names, committee.manifest)


def _song_rows(data: "_UserData", songs):
    idx = [data.position[s] for s in songs]
    parts = [np.arange(data.offsets[i], data.offsets[i + 1]) for i in idx]
    rows = np.concatenate(parts) if parts else np.zeros(0, dtype=int)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return rows, offsets


def audio_members(committee: Committee) -> list[int]:
    """The members that read the songs' features only (the crowd-aware ones also read other
    listeners): the "committee" rows of the results, and what mc/mix queries follow."""
    crowd = set(committee.of_kind(CROWD_KIND))
    return [k for k in range(len(committee.members)) if k not in crowd]


def _scores_by_algorithm(committee: Committee, proba: np.ndarray, y_true) -> dict:
    """F1 per algorithm (mean of its members' probabilities) and for the whole committee."""
    algorithms = committee.algorithms()
    out = {}
    for algorithm in dict.fromkeys(algorithms):
        sel = [k for k, a in enumerate(algorithms) if a == algorithm]
        out[algorithm] = f1_scores(y_true, machine_consensus(proba[sel]))
    # "committee" stays the audio committee; "full" weighs the two sources equally (a plain mean
    # over members would give the 15 audio members three times the 5 crowd members' say)
    audio_index = audio_members(committee)
    audio = machine_consensus(proba[audio_index])
    out[COMMITTEE] = f1_scores(y_true, audio)
    crowd_index = committee.of_kind(CROWD_KIND)
    if crowd_index:
        out[FULL] = f1_scores(y_true, 0.5 * audio + 0.5 * machine_consensus(proba[crowd_index]))
    return out


def simulate_user_mode(ctx: Context, user, mode: str, pretrained: Committee | None = None,
                       query_members=None) -> pd.DataFrame:
    """Every repeat x update x (q, e) simulation of one user in one query mode.

    query_members: indices of the members whose mean ranks mc/mix and balanced queries
    (default: the audio members, as the recorded experiments ran).
    mode "mc:<strategy>": mode mc ranked by that query strategy (trompa_mer.strategies; the
    labelled songs of ranked batch are those asked so far)."""
    cfg = ctx.config
    strategy = mode.split(":", 1)[1] if mode.startswith("mc:") else None
    needs = strat.needs(strategy) if strategy else frozenset()
    if pretrained is None:
        pretrained = pretrain_for_user(ctx, user)
    data = _UserData(ctx, user, pretrained)
    all_rows, all_offsets = _song_rows(data, data.songs)
    audio = audio_members(pretrained) if query_members is None else list(query_members)
    # the audio members' source: only then do the batches carry the real song ids
    sound = ctx.audio if simulatable(pretrained, ctx.audio).of_kind("audio") else None
    with_av = bool(pretrained.of_target("av"))
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
                rng = np.random.default_rng(seed_sequence(cfg.seed, "rand", user, repeat, mode, config_name))
                sampler = np.random.default_rng(seed_sequence(cfg.seed, "candidates", user, repeat, mode, config_name))
                sampled = cfg.candidates is not None and (mode in ("mc", "mix") or cfg.balanced)
                committee = pretrained.copy()
                asked: list = []
                current_input = data.song_input  # the crowd members' rows after the answers so far
                base = {"user": user, "repeat": repeat, "mode": mode, "update": update,
                        "config": config_name, "queries": q, "n_pool": len(pool),
                        "n_test": len(test), "n_test_crowd": n_crowd}
                for iteration in range(0, e + 1):
                    if iteration > 0:
                        asked_set = set(asked)
                        keep = np.flatnonzero([s not in asked_set for s in pool])
                        if not len(keep):
                            break
                        # the round's candidates only (the default ranking; a strategy ranks them all)
                        if sampled and strategy is None and cfg.candidates < len(keep):
                            keep = keep[np.sort(sampler.choice(len(keep), cfg.candidates, replace=False))]
                        remaining = [pool[i] for i in keep]
                        if strategy is None:
                            machine = machine_consensus(proba[audio][:, pool_idx[keep]])
                            scores = mode_scores(mode, remaining, machine_proba=machine,
                                                 human_freqs=data.crowd, rng=rng)
                            chosen = select_queries(remaining, scores, q, asked=asked, balanced=cfg.balanced,
                                                    predicted=machine.argmax(axis=1))
                        else:
                            chosen = _strategy_queries(strategy, needs, data, remaining, pool_idx[keep], asked,
                                                       q, proba[audio], song_av, cfg.balanced)
                        asked.extend(chosen)
                        if update == "batch":
                            batch = chosen
                        else:
                            committee = pretrained.copy()
                            batch = asked
                        rows, offsets = _song_rows(data, batch)
                        current_input = data.crowd_input(asked)  # once per round: update and predict
                        song_input = None
                        if data.song_input is not None:
                            song_input = current_input[[data.position[s] for s in batch]]
                        # quadrant-only answers: regression members train towards the answered
                        # quadrant's centroid (a dataset's per-listener values, TROMPA-MER's
                        # +-1, are only the quadrant's signs and say nothing more)
                        committee.update(_songs(data.X_scaled[rows], offsets, song_input, batch, sound),
                                         [data.labels[s] for s in batch])
                    # one prediction of every song of the user serves the test F1 and the next query
                    everything = _songs(data.X_scaled[all_rows], all_offsets, current_input, data.songs, sound)
                    proba = committee.song_proba(everything)
                    song_av = committee.song_av(everything) if with_av else None
                    counts = np.bincount([data.labels[s] for s in asked], minlength=N_CLASSES)
                    av = {}
                    if with_av:
                        av = _av_by_algorithm(committee, song_av[:, test_idx], data.values[test_idx])
                    for algorithm, (fw, fm) in _scores_by_algorithm(committee, proba[:, test_idx], y_test).items():
                        records.append({**base, "algorithm": algorithm, "iteration": iteration,
                                        "n_annotations": len(asked), "f1_weighted": fw, "f1_macro": fm,
                                        **dict(zip(COUNT_COLUMNS, counts.tolist())), **av.get(algorithm, {})})
    frame = pd.DataFrame.from_records(records)
    return frame.reindex(columns=result_columns(ctx))


def _strategy_queries(strategy, needs, data: "_UserData", remaining, remaining_idx, asked, q, member_proba,
                      song_av, balanced) -> list:
    """The songs a non-default strategy asks next among `remaining` (rows remaining_idx)."""
    features = labelled = member_av = None
    if "features" in needs:
        features = data.song_features()[remaining_idx]
        labelled = data.song_features()[[data.position[s] for s in asked]]
    if "av" in needs:
        if song_av is None or not len(song_av):
            raise MERError(f"mode mc:{strategy}: needs arousal/valence regression members "
                           f"(--algorithms sgd-av or xgb-av)")
        member_av = song_av[:, remaining_idx]
    chosen, _ = strat.choose(strategy, remaining, q, member_proba[:, remaining_idx], features=features,
                             labelled_features=labelled, member_av=member_av, asked=asked, balanced=balanced)
    return chosen


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
        fw, fm = f1_scores(y_test, proba)
        counts = dict(zip(COUNT_COLUMNS, [0] * N_CLASSES))
        records.append({**base, "mode": "crowd", "algorithm": "crowd", "n_annotations": 0,
                        "f1_weighted": fw, "f1_macro": fm, **counts})
        # own: members trained only on this user's pool labels, with a scaler of those songs
        # (regression members on the user's own values, where the annotations give them)
        X_pool, y_pool = rows_for_songs(ctx.features, pool, data.labels)
        scaler = StandardScaler().fit(X_pool)
        Z_pool = scaler.transform(X_pool).astype(np.float32)
        av_pool = np.repeat(data.values[[data.position[s] for s in pool]],
                            np.diff(ctx.features.gather(pool)[1]), axis=0)
        members = []
        for a in cfg.algorithms:
            member = _new_member(a, cfg.member_params)
            if member.target_kind != "av":
                members.append((a, member.fit(Z_pool, y_pool)))
            elif (~np.isnan(av_pool[:, 0])).any():
                given = ~np.isnan(av_pool[:, 0])
                members.append((a, member.fit(Z_pool[given], Labels(y_pool[given], av_pool[given]))))
        own = Committee(members, scaler, ctx.features.feature_names)
        X_test, offsets = ctx.features.gather(test)
        test_songs = _songs(standardize(own, X_test), offsets)
        song_proba = own.song_proba(test_songs)
        test_values = data.values[[data.position[s] for s in test]]
        av = _av_by_algorithm(own, own.song_av(test_songs), test_values) if own.of_target("av") else {}
        pool_counts = np.bincount([data.labels[s] for s in pool], minlength=N_CLASSES)
        for k, algorithm in enumerate([a for a, _ in members] + [COMMITTEE]):
            p = song_proba.mean(axis=0) if algorithm == COMMITTEE else song_proba[k]
            fw, fm = f1_scores(y_test, p)
            records.append({**base, "mode": "own", "algorithm": algorithm, "n_annotations": len(pool),
                            "f1_weighted": fw, "f1_macro": fm,
                            **dict(zip(COUNT_COLUMNS, pool_counts.tolist())), **av.get(algorithm, {})})
    return pd.DataFrame.from_records(records).reindex(columns=result_columns(ctx))
