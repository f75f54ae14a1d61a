"""simulate_personalization.py --strategy (issue 21): strategies run side by side in the
simulator as modes "mc:<strategy>", each asking what the strategy asks, and the default run is
the experiment it always was (same jobs, same part files, same fingerprint)."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_simulate import FAST_MEMBERS, deviant_population
from trompa_mer import simulate, strategies
from trompa_mer.errors import MERError
from trompa_mer.simulate import ExperimentConfig, run_experiment
from trompa_mer.simulate import protocol


def _config(**extra):
    settings = dict(min_annotations=100, modes=["mc", "rand"], queries=[5], iterations=[2], updates=["batch"],
                    repeats=1, algorithms=["gnb", "sgd"], member_params=FAST_MEMBERS, users=["me"])
    settings.update(extra)
    return ExperimentConfig(**settings)


def test_strategies_run_as_modes_beside_mc(tmp_path):
    annotations, features = deviant_population(seed=2)
    names = ["consensus-entropy", "kl-max", "ranked-batch", "margin+density"]
    config = _config(strategies=names)
    assert config.job_modes() == ["mc", "mc:kl-max", "mc:ranked-batch", "mc:margin+density", "rand"]
    result = run_experiment(annotations, features, config, tmp_path / "run", progress=False, plots=False)
    assert result["complete"]
    table = simulate.read_results(tmp_path / "run")
    sims = table[~table["mode"].isin(["crowd", "own"])]
    assert set(sims["mode"]) == {"mc", "mc:kl-max", "mc:ranked-batch", "mc:margin+density", "rand"}
    # every strategy asks 5 songs a round, from the same pre-trained committee
    last = sims[sims["iteration"] == 2]
    assert set(last["n_annotations"]) == {10}
    start = sims[sims["iteration"] == 0]
    assert start.groupby("algorithm")["f1_weighted"].nunique().max() == 1
    parts = sorted(p.name for p in (tmp_path / "run" / "parts").glob("*.csv"))
    assert any(p.endswith("__mc_kl-max.csv") for p in parts) and any(p.endswith("__mc.csv") for p in parts)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["strategies"] == names


def test_the_first_round_asks_what_the_strategy_ranks_first():
    """Round 1 of mode mc:kl-max asks the pool's top 5 by kl_max of the pre-trained committee."""
    annotations, features = deviant_population(seed=2)
    config = _config(strategies=["kl-max"], iterations=[1])
    ctx = protocol.Context(config, simulate.prepare_annotations(annotations), features)
    committee = protocol.pretrain_for_user(ctx, "me")
    rows = protocol.simulate_user_mode(ctx, "me", "mc:kl-max", committee)
    data = protocol._UserData(ctx, "me", committee)
    pool, _ = simulate.user_split(data.songs, config.seed, "me", 0, config.test_size)
    pool_idx = [data.position[s] for s in pool]
    everything = protocol._songs(data.X_scaled[protocol._song_rows(data, data.songs)[0]],
                                 protocol._song_rows(data, data.songs)[1])
    proba = committee.song_proba(everything)[:, pool_idx]
    expected = strategies.choose("kl-max", pool, 5, proba)[0]
    counts = np.bincount([data.labels[s] for s in expected], minlength=4)
    asked = rows[(rows["iteration"] == 1) & (rows["algorithm"] == "committee")]
    assert asked[["n_Q1", "n_Q2", "n_Q3", "n_Q4"]].to_numpy()[0].tolist() == counts.tolist()
    # and not what consensus entropy would have asked (else the check above proves little)
    other = strategies.choose("consensus-entropy", pool, 5, proba)[0]
    assert set(other) != set(expected)


def test_default_run_keeps_its_jobs_and_fingerprint():
    config = _config()
    assert config.job_modes() == ["mc", "rand"]
    assert "strategies" not in config.fingerprint()  # a run begun before strategies resumes
    assert "strategies" in _config(strategies=["margin"]).fingerprint()


@pytest.mark.parametrize("settings, needle", [
    ({"strategies": ["bogus"]}, "--strategy: expected one of consensus-entropy"),
    ({"strategies": []}, "one or more different strategies"),
    ({"strategies": ["margin", "margin"]}, "one or more different strategies"),
    ({"strategies": ["margin"], "modes": ["hc", "rand"]}, "add mc to the modes"),
])
def test_bad_strategies_are_refused(settings, needle):
    with pytest.raises(MERError, match=needle):
        _config(**settings).validate()


def test_max_std_needs_regression_members(tmp_path):
    annotations, features = deviant_population(seed=2)
    with pytest.raises(MERError, match="--strategy max-std: needs arousal/valence regression members"):
        run_experiment(annotations, features, _config(strategies=["max-std"]), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_script_passes_several_strategies(tmp_path, repo_root, script_env):
    import subprocess
    import sys

    annotations, features = deviant_population(seed=2)
    annotations.assign(quadrant=annotations.quadrant + 1).to_csv(tmp_path / "ann.csv", index=False)
    pd.DataFrame(features.X, columns=features.feature_names).assign(s_id=features.song_ids).to_csv(
        tmp_path / "feats.csv", index=False)
    args = [sys.executable, str(repo_root / "simulate_personalization.py"), "-a", str(tmp_path / "ann.csv"),
            "-i", str(tmp_path / "feats.csv"), "-o", str(tmp_path / "out"), "-n", "100", "-m", "mc",
            "-q", "5", "-e", "1", "--repeats", "1", "--algorithms", "gnb", "--users", "me", "--no-plots",
            "--quiet", "--strategy", "consensus-entropy", "vote-entropy"]
    result = subprocess.run(args, env=script_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    modes = set(pd.read_csv(tmp_path / "out" / "results.csv")["mode"])
    assert {"mc", "mc:vote-entropy"} <= modes
    bad = subprocess.run([*args[:-2], "nope"], env=script_env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "--strategy: expected one of" in bad.stderr


def _query_strategies_experiment():
    path = Path(__file__).resolve().parents[1] / "experiments" / "query_strategies.py"
    spec = importlib.util.spec_from_file_location("query_strategies", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_holm_correction_by_hand():
    holm = _query_strategies_experiment().holm
    # sorted 0.01 (x3), 0.03 (x2), 0.04 (x1, but never below the step before)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
