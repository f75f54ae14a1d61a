"""The offline experiment engine on generated populations."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from trompa_mer import simulate
from trompa_mer.consensus import human_consensus
from trompa_mer.errors import MERError
from trompa_mer.simulate import ExperimentConfig, FeatureTable, run_experiment

FAST_MEMBERS = {"xgb": {"rounds": 10, "update_rounds": 2}}


def features_table(n_songs, n_features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_songs, n_features)).astype(np.float32)
    ids = np.array([f"s{i:03d}" for i in range(n_songs)])
    return FeatureTable(ids, X, np.arange(n_songs + 1), [f"f{j}" for j in range(n_features)])


def quadrant_of(a, v):
    return np.where(a >= 0, np.where(v >= 0, 0, 1), np.where(v >= 0, 3, 2))


def deviant_population(seed=0):
    """A crowd labels songs by one rule of the first two features; user 'me' by a rotated rule.

    The crowd's rule: arousal = f0, valence = f1. Mine: arousal = f1, valence = -f0 (a quarter
    turn), so a committee trained on the crowd is wrong for me almost everywhere and only my own
    answers can fix it.
    """
    features = features_table(260, seed=seed)
    X = features.X
    crowd_q = quadrant_of(X[:, 0], X[:, 1])
    my_q = quadrant_of(X[:, 1], -X[:, 0])
    rows = []
    rng = np.random.default_rng(seed + 1)
    for song, q in zip(features.song_ids, crowd_q):
        for listener in range(3):
            label = q if rng.random() > 0.1 else rng.integers(0, 4)
            rows.append((f"crowd{listener}", song, int(label)))
    for song, q in zip(features.song_ids[:180], my_q[:180]):
        rows.append(("me", song, int(q)))
    return pd.DataFrame(rows, columns=["user", "song", "quadrant"]), features


def test_f1_matches_sklearn():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = rng.integers(1, 30)
        y = rng.integers(0, 4, n)
        proba = rng.random((n, 4))
        pred = proba.argmax(axis=1)
        fw, fm = simulate.f1_scores(y, proba)
        assert fw == pytest.approx(f1_score(y, pred, average="weighted", zero_division=0))
        assert fm == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))


def test_personalization_helps_a_listener_who_differs_from_the_crowd(tmp_path):
    annotations, features = deviant_population()
    config = ExperimentConfig(min_annotations=100, modes=["mc", "rand"], queries=[10], iterations=[6],
                              updates=["batch", "cumulative"], repeats=2, algorithms=["gnb", "sgd", "xgb"],
                              member_params=FAST_MEMBERS, users=["me"])
    result = run_experiment(annotations, features, config, tmp_path / "run", progress=False, plots=False)
    assert result["complete"] and result["users"] == 1
    table = simulate.read_results(tmp_path / "run")
    sims = table[(table["mode"] != "crowd") & (table["mode"] != "own") & (table["algorithm"] == "committee")]
    per_iteration = sims.groupby(["update", "iteration"])["f1_weighted"].mean()
    for update in ("batch", "cumulative"):
        start, end = per_iteration[update].iloc[0], per_iteration[update].iloc[-1]
        assert end > start + 0.2, (update, start, end)
    # 6 iterations x 10 queries, the class counts add up to the answers given
    last = sims[sims["iteration"] == 6]
    assert (last[simulate.COUNT_COLUMNS].sum(axis=1) == 60).all()
    assert (last["n_annotations"] == 60).all()
    # references: the crowd is wrong for this listener, a model of their own labels is not
    refs = table[table["mode"].isin(["crowd", "own"])].groupby("mode")["f1_weighted"].mean()
    assert refs["own"] > refs["crowd"] + 0.3
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    assert set(summary["mode"]) == {"mc", "rand"}
    assert {"f1_start_mean", "f1_end_mean", "auc_mean", "n_positive_slope"} <= set(summary.columns)


def leak_population():
    """Every song of 'me' has other listeners; if my labels leaked into their consensus:
    - the crowd baseline would be perfect (a tie between my label and a lower-ranked other
      label is resolved towards the lower quadrant, mine), and
    - the hc ranking would flip (group A, entropy 0 -> ln 2; group B 0.64 -> 0.56).
    Group A: I say Q1, one other says Q2. Group B: I say Q3, others say Q3, Q3, Q4.
    """
    features = features_table(120, seed=5)
    rows = []
    ids = features.song_ids
    for i, song in enumerate(ids[:80]):
        if i % 2 == 0:  # group A
            rows += [("me", song, 0), (f"o{i}", song, 1)]
        else:  # group B
            rows += [("me", song, 2), (f"o{i}a", song, 2), (f"o{i}b", song, 2), (f"o{i}c", song, 3)]
    for i, song in enumerate(ids[80:]):  # pre-training material only others annotated
        rows += [("filler1", song, i % 4), ("filler2", song, i % 4)]
    return pd.DataFrame(rows, columns=["user", "song", "quadrant"]), features


def _leak_run(tmp_path, name):
    annotations, features = leak_population()
    config = ExperimentConfig(min_annotations=50, modes=["hc"], queries=[4], iterations=[2], updates=["batch"],
                              repeats=1, algorithms=["gnb"], users=["me"])
    run_experiment(annotations, features, config, tmp_path / name, progress=False, plots=False)
    table = simulate.read_results(tmp_path / name)
    crowd = table[table["mode"] == "crowd"].iloc[0]
    first = table[(table["mode"] == "hc") & (table["iteration"] == 1)].iloc[0]
    labels = dict(zip(annotations.loc[annotations.user == "me", "song"], annotations.loc[annotations.user == "me", "quadrant"]))
    _, test = simulate.user_split(sorted(labels), config.seed, "me", 0, config.test_size)
    return crowd, first, labels, test


def test_own_labels_never_reach_the_human_consensus(tmp_path):
    crowd, first, labels, test = _leak_run(tmp_path, "clean")
    y = np.array([labels[s] for s in test])
    expected = np.where(y == 0, 1, 2)  # the others' majority: Q2 for group A, Q3 for group B
    assert crowd["f1_weighted"] == pytest.approx(f1_score(y, expected, average="weighted", zero_division=0))
    assert crowd["f1_weighted"] < 0.9
    # hc asked group B first (the others disagree there), never group A
    assert first["n_Q3"] == 4 and first["n_Q1"] == 0


def test_leak_check_can_fail(tmp_path, monkeypatch):
    """The same checks against an engine that leaks the user's labels: they must flip."""
    for module in (simulate.data, simulate.protocol):  # every module of the engine that builds a consensus
        monkeypatch.setattr(module, "human_consensus", lambda table, exclude_user=None: human_consensus(table))
    crowd, first, _, _ = _leak_run(tmp_path, "leaky")
    assert crowd["f1_weighted"] == pytest.approx(1.0)
    assert first["n_Q1"] == 4


def small_setup():
    annotations, features = deviant_population(seed=2)
    config = ExperimentConfig(min_annotations=100, modes=["mc", "hc", "rand"], queries=[5], iterations=[2],
                              updates=["batch"], repeats=1, algorithms=["gnb", "sgd"], member_params=FAST_MEMBERS,
                              users=["me", "me2"])
    # a second simulated user, so there is something to run in parallel
    extra = annotations[annotations.user == "me"].copy()
    extra["user"] = "me2"
    extra["quadrant"] = (extra["quadrant"] + 1) % 4
    return pd.concat([annotations, extra], ignore_index=True), features, config


def _sorted(table):
    return table.sort_values(["user", "mode", "update", "config", "repeat", "algorithm", "iteration"]).reset_index(drop=True)


def test_resume_after_interruption_gives_the_same_results(tmp_path):
    annotations, features, config = small_setup()
    partial = run_experiment(annotations, features, config, tmp_path / "resumed", progress=False,
                             max_jobs=3, plots=False)
    assert not partial["complete"] and partial["jobs_run"] == 3
    assert len(list((tmp_path / "resumed" / "parts").glob("*.csv"))) == 3
    assert not (tmp_path / "resumed" / "results.csv").exists()
    finished = run_experiment(annotations, features, config, tmp_path / "resumed", progress=False, plots=False)
    assert finished["complete"] and finished["jobs_run"] == partial["jobs"] - 3
    again = run_experiment(annotations, features, config, tmp_path / "resumed", progress=False, plots=False)
    assert again["jobs_run"] == 0
    straight = run_experiment(annotations, features, config, tmp_path / "straight", progress=False, plots=False)
    assert straight["complete"]
    resumed = _sorted(pd.read_csv(tmp_path / "resumed" / "results.csv"))
    direct = _sorted(pd.read_csv(tmp_path / "straight" / "results.csv"))
    pd.testing.assert_frame_equal(resumed, direct)
    assert set(resumed["user"].astype(str)) == {"me", "me2"}


def test_resume_refuses_other_settings(tmp_path):
    annotations, features, config = small_setup()
    run_experiment(annotations, features, config, tmp_path / "run", progress=False, max_jobs=1, plots=False)
    config.queries = [6]
    with pytest.raises(MERError, match="other settings"):
        run_experiment(annotations, features, config, tmp_path / "run", progress=False, plots=False)


def test_splits_identical_across_modes_and_seeded(tmp_path):
    annotations, features, config = small_setup()
    run_experiment(annotations, features, config, tmp_path / "a", progress=False, plots=False)
    table = simulate.read_results(tmp_path / "a")
    start = table[(table["iteration"] == 0) & ~table["mode"].isin(["crowd", "own"])]
    # iteration 0 is the same pre-trained committee on the same test songs in every mode
    assert start.groupby(["user", "algorithm"])["f1_weighted"].nunique().max() == 1
    pool, test = simulate.user_split([f"s{i}" for i in range(40)], 7, "u", 0, 0.15)
    assert len(test) == 6 and not set(pool) & set(test)
    assert (pool, test) == simulate.user_split([f"s{i}" for i in range(40)][::-1], 7, "u", 0, 0.15)
    assert test != simulate.user_split([f"s{i}" for i in range(40)], 7, "u", 1, 0.15)[1]


def test_joblib_and_dask_backends_match_serial(tmp_path):
    from dask.distributed import LocalCluster

    annotations, features, config = small_setup()
    config.modes = ["mc", "rand"]
    run_experiment(annotations, features, config, tmp_path / "serial", progress=False, plots=False)
    run_experiment(annotations, features, config, tmp_path / "joblib", jobs=2, progress=False, plots=False)
    # a real scheduler on loopback TCP, reached by address as a remote one would be
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1",
                      dashboard_address=None) as cluster:
        run_experiment(annotations, features, config, tmp_path / "dask", backend="dask",
                       scheduler=cluster.scheduler_address, progress=False, plots=False)
    serial = _sorted(pd.read_csv(tmp_path / "serial" / "results.csv"))
    for name in ("joblib", "dask"):
        pd.testing.assert_frame_equal(_sorted(pd.read_csv(tmp_path / name / "results.csv")), serial)


def test_balanced_and_all_modes_with_window_features(tmp_path):
    """Window-level features (several rows per song) and balanced queries: curves complete, plots written."""
    annotations, song_features = deviant_population(seed=4)
    rng = np.random.default_rng(0)
    windows = np.repeat(song_features.X, 3, axis=0) + rng.normal(scale=0.05, size=(len(song_features.X) * 3, 4))
    features = FeatureTable(song_features.song_ids, windows.astype(np.float32),
                            np.arange(0, len(windows) + 1, 3), song_features.feature_names)
    config = ExperimentConfig(min_annotations=100, modes=list(simulate.MODES), balanced=True, queries=[8, 20],
                              iterations=[2, 1], updates=["batch", "cumulative"], repeats=1,
                              algorithms=["gnb", "xgb"], member_params=FAST_MEMBERS, users=["me"])
    result = run_experiment(annotations, features, config, tmp_path / "w", progress=False)
    table = pd.read_csv(tmp_path / "w" / "results.csv")
    sims = table[~table["mode"].isin(["crowd", "own"])]
    assert len(sims) == 4 * 2 * (3 + 2) * 3  # modes x updates x iterations (incl. 0) x (gnb, xgb, committee)
    assert sims["f1_weighted"].between(0, 1).all() and sims["f1_macro"].between(0, 1).all()
    # balanced: the first 8 queries hold at most 2 songs per predicted quadrant -> no class can be
    # fully absent from what the mc committee predicted... at least the count adds up
    assert (sims[sims.iteration == 1][simulate.COUNT_COLUMNS].sum(axis=1) == sims[sims.iteration == 1].queries).all()
    assert len(result["plots"]) == 3 and all(open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in result["plots"])
    # and the paper figures (tests/test_figures.py): per config x update, mean and listeners, 3 formats
    assert len(result["figures"]) == 2 * 2 * 2 * 3
    assert {p.rsplit(".", 1)[1] for p in result["figures"]} == {"png", "pdf", "svg"}
    tests = pd.read_csv(tmp_path / "w" / "tests.csv")
    # one listener: no paired test has a verdict (values: tests/test_statistics.py)
    assert len(tests) > 0 and tests["p_t"].isna().all() and tests["p_t_bonferroni"].isna().all()
    assert "mc" in (tmp_path / "w" / "summary.md").read_text()


def test_song_features_loader(tmp_path):
    path = tmp_path / "feats.csv"
    path.write_text("s_id,a,b\nX1,1,2\nx2,3,4\nX1,1,2\n")
    table = simulate.load_song_features(path)
    assert table.song_ids.tolist() == ["x1", "x2"] and table.X.shape == (2, 2)
    path.write_text("s_id,a,b\nx1,1,2\nx1,3,4\n")
    with pytest.raises(MERError, match="more than once"):
        simulate.load_song_features(path)
    path.write_text("s_id,a,b\nx1,1,oops\n")
    with pytest.raises(MERError, match="'b'"):
        simulate.load_song_features(path)
    path.write_text("name,a\nx1,1\n")
    with pytest.raises(MERError, match="song id column"):
        simulate.load_song_features(path)


def test_no_eligible_user_is_a_clear_error(tmp_path):
    annotations, features = deviant_population()
    config = ExperimentConfig(min_annotations=1000, queries=[4], iterations=[2], algorithms=["gnb"])
    with pytest.raises(MERError, match="at least 1000"):
        run_experiment(annotations, features, config, tmp_path / "x", progress=False)
    config = ExperimentConfig(min_annotations=10, queries=[4, 5], iterations=[2], algorithms=["gnb"])
    with pytest.raises(MERError, match="-q/-e"):
        run_experiment(annotations, features, config, tmp_path / "y", progress=False)


def test_script_help_and_bad_input(tmp_path, repo_root, script_env):
    script = str(repo_root / "simulate_personalization.py")
    out = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, env=script_env)
    assert out.returncode == 0
    for flag in ("--preset", "-n", "-m", "--balanced", "-q", "-e", "--update", "--repeats", "--pretrain",
                 "--committee", "--jobs", "--backend", "--scheduler", "--max-annotations", "--crowd-variant"):
        assert flag in out.stdout
    bad = tmp_path / "ann.csv"
    bad.write_text("user,song\nu,s\n")
    feats = tmp_path / "f.csv"
    feats.write_text("s_id,a\ns,1\n")
    out = subprocess.run([sys.executable, script, "-a", str(bad), "-i", str(feats), "-o", str(tmp_path / "o")],
                         capture_output=True, text=True, env=script_env)
    assert out.returncode == 1 and out.stderr.startswith("error:") and "quadrant" in out.stderr


def test_script_end_to_end_on_csv(tmp_path, repo_root, script_env):
    annotations, features = deviant_population(seed=6)
    ann_path, feat_path = tmp_path / "ann.csv", tmp_path / "feats.csv"
    annotations.assign(quadrant=annotations.quadrant + 1).to_csv(ann_path, index=False)
    pd.DataFrame(features.X, columns=features.feature_names).assign(s_id=features.song_ids).to_csv(feat_path, index=False)
    out = subprocess.run([sys.executable, str(repo_root / "simulate_personalization.py"), "-a", str(ann_path),
                          "-i", str(feat_path), "-o", str(tmp_path / "o"), "-n", "100", "-m", "mc", "rand",
                          "-q", "10", "-e", "2", "--repeats", "1", "--algorithms", "gnb", "--quiet", "--no-plots"],
                         capture_output=True, text=True, env=script_env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["complete"] and result["users"] == 1
    assert (tmp_path / "o" / "summary.md").exists()
    out = subprocess.run([sys.executable, str(repo_root / "simulate_personalization.py"), "-a", str(ann_path),
                          "-i", str(feat_path), "-o", str(tmp_path / "o2"), "-n", "100", "--max-annotations", "50"],
                         capture_output=True, text=True, env=script_env)
    assert out.returncode == 1 and "--max-annotations (50) is below --min-annotations (100)" in out.stderr
    assert not (tmp_path / "o2").exists()


MC_CONFIG = dict(min_annotations=100, modes=["mc"], queries=[10], iterations=[3], updates=["cumulative"],
                 repeats=1, users=["me"])


def _simulated_committee_curve(tmp_path, annotations, features, members, scaler):
    """Save `members` as a committee, simulate listener "me" in mc mode (3 rounds of 10) and
    return (the committee as simulated, its F1 curve)."""
    from trompa_mer.committee import Committee

    Committee(members, scaler, features.feature_names).save(tmp_path / "committee")
    committee = simulate.simulatable(Committee.load(tmp_path / "committee"))
    result = run_experiment(annotations, features, ExperimentConfig(**MC_CONFIG), tmp_path / "run",
                            committee=committee, progress=False, plots=False)
    assert result["complete"]
    table = pd.read_csv(tmp_path / "run" / "results.csv")
    return committee, table[(table["mode"] == "mc") & (table["algorithm"] == "committee")].sort_values("iteration")


def test_a_saved_pretrained_committee_can_be_simulated(tmp_path):
    from sklearn.preprocessing import StandardScaler

    from trompa_mer.members import make_member

    annotations, features = deviant_population(seed=8)
    scaler = StandardScaler().fit(features.X)
    Xs = scaler.transform(features.X).astype(np.float32)
    crowd_q = quadrant_of(features.X[:, 0], features.X[:, 1])
    # small pre-training sets, so that 30 answers can move a Gaussian NB
    members = [(f"gnb_{k}", make_member("gnb").fit(Xs[k:40:2], crowd_q[k:40:2])) for k in range(2)]
    committee, curve = _simulated_committee_curve(tmp_path, annotations, features, members, scaler)
    assert len(curve) == 4 and curve["f1_weighted"].iloc[-1] > curve["f1_weighted"].iloc[0]
    narrow = FeatureTable(features.song_ids, features.X[:, :2], features.offsets, ["f0", "f1"])
    with pytest.raises(MERError, match="columns"):
        run_experiment(annotations, narrow, ExperimentConfig(**MC_CONFIG), tmp_path / "bad", committee=committee,
                       progress=False)


def test_a_committee_with_song_members_can_be_simulated(tmp_path):
    """Song members (input kind song-stats) take part in the simulator: their song rows come
    from the listener's standardized windows, and answers update them (the curve moves)."""
    from sklearn.preprocessing import StandardScaler

    from trompa_mer.committee import song_statistics
    from trompa_mer.members import make_member

    annotations, features = deviant_population(seed=8)
    scaler = StandardScaler().fit(features.X)
    Xs = scaler.transform(features.X).astype(np.float32)
    sow = np.repeat(np.arange(len(features.song_ids)), np.diff(features.offsets))
    rows = song_statistics(Xs, sow, len(features.song_ids))
    song_q = quadrant_of(*(features.X[features.offsets[:-1], :2].T))
    members = [(f"song-gnb_{k}", make_member("song-gnb").fit(rows[k:40:2], song_q[k:40:2])) for k in range(2)]
    _, curve = _simulated_committee_curve(tmp_path, annotations, features, members, scaler)
    assert len(curve) == 4 and curve["f1_weighted"].iloc[-1] > curve["f1_weighted"].iloc[0]
