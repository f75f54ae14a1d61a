"""Audio members on 4Q (issue 20 item 3 and 5): batch-norm calibration of a random encoder, the
speech-transfer study with 4Q as target, and the CNN study, end to end on a generated corpus."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import ROOT
from test_fourq import _corpus as fourq_corpus
from trompa_mer import encoder as E
from trompa_mer import logmel
from trompa_mer.errors import MERError

# 14 songs, 7 artists of two songs each, every quadrant present
SONGS = [(f"MT{i:02d}", f"Q{i % 4 + 1}", f"artist {i // 2}") for i in range(14)]


def _corpus(tmp_path):
    """A 4Q folder (audio/, annotations.csv, metadata.csv) of SONGS, 4 s clips."""
    return fourq_corpus(tmp_path, songs=SONGS, seconds=4.0)


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _patches(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, logmel.N_MELS, 31)) * 2 - 5).astype(np.float32)


# --- calibrate_batch_norm -----------------------------------------------------------------------------
def test_calibration_gives_a_random_encoder_unit_scale_without_moving_a_weight():
    torch.manual_seed(0)
    patches = _patches()
    encoder = E.PatchEncoder("cpc", 4, patches.mean(axis=(0, 2)), patches.std(axis=(0, 2)))
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with torch.no_grad():
        raw = encoder.eval()(torch.from_numpy(patches)).std(dim=0).median()
    out = E.calibrate_batch_norm(encoder, patches, batch=16)
    assert out is encoder and not encoder.training and not any(m.training for m in encoder.modules())
    with torch.no_grad():
        calibrated = encoder(torch.from_numpy(patches)).std(dim=0).median()
    # uncalibrated, the default initialisation shrinks the embeddings; calibrated, the projection's
    # batch norm standardises its input, and the last linear layer keeps it near unit scale
    assert raw < 0.05 and calibrated > 0.2
    after = encoder.state_dict()
    for name, value in before.items():
        if "running" in name or "num_batches" in name:
            continue
        assert torch.equal(value, after[name]), name  # weights and band statistics untouched
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert all(m.momentum == 0.1 for m in norms)  # the default momentum is given back
    # the input layer's statistics are the cumulative ones over every patch (four equal batches)
    normalised = encoder.normalise(torch.from_numpy(patches))
    assert torch.allclose(encoder.conv.in_bn.running_mean, normalised.mean().reshape(1), atol=1e-5)
    assert torch.allclose(encoder.conv.in_bn.running_var, normalised.var().reshape(1), rtol=1e-3)
    assert int(encoder.conv.in_bn.num_batches_tracked) == 4


def test_calibration_skips_a_last_single_patch_and_refuses_fewer_than_two():
    encoder = E.PatchEncoder("scae", 2)
    E.calibrate_batch_norm(encoder, _patches(17), batch=8)  # batches of 8, 8, then one patch left out
    assert int(encoder.conv.in_bn.num_batches_tracked) == 2
    E.calibrate_batch_norm(encoder, _patches(18), batch=8)  # a last batch of two patches counts
    assert int(encoder.conv.in_bn.num_batches_tracked) == 3
    E.calibrate_batch_norm(encoder, _patches(2))  # two patches are enough
    assert int(encoder.conv.in_bn.num_batches_tracked) == 1
    # the default batch is 256 patches: 258 are two batches, 256 and 2
    E.calibrate_batch_norm(encoder, _patches(258))
    assert int(encoder.conv.in_bn.num_batches_tracked) == 2
    # float64 patches (numpy's default) are taken as the float32 the encoder computes in
    E.calibrate_batch_norm(encoder, _patches(4).astype(np.float64))
    assert int(encoder.conv.in_bn.num_batches_tracked) == 1
    with pytest.raises(MERError, match="batch-norm calibration: expected at least 2 patches, got 1"):
        E.calibrate_batch_norm(encoder, _patches(1))


# --- the speech-transfer study on 4Q ------------------------------------------------------------------
def test_emotify_holdout_and_splits_are_the_ones_the_published_table_used():
    study = _load("speech_transfer")
    groups = np.array([str(i) for i in range(30)])
    music, evaluated = study.music_holdout("emotify", groups, 1987)
    order = np.random.default_rng(1987).permutation(30)
    assert music.tolist() == sorted(order[:10]) and evaluated.tolist() == sorted(order[10:])


def test_4q_holdout_and_folds_never_share_an_artist():
    study = _load("speech_transfer")
    artists = np.repeat([f"a{i}" for i in range(20)], 3)
    y = np.tile([0, 1, 2, 3], 15)
    music, evaluated = study.music_holdout("4q", artists, 1987)
    assert len(music) + len(evaluated) == 60 and 15 <= len(music) <= 27
    assert not set(artists[music]) & set(artists[evaluated])
    args = study.parse_args(["--out", "x", "--target", "4q", "--fe-splits", "4"])
    splits = study.evaluation_splits(args, y[evaluated], artists[evaluated])
    assert len(splits) == 4
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested) == list(range(len(evaluated)))  # folds: every song tested once
    for train, test in splits:
        assert not set(artists[evaluated][train]) & set(artists[evaluated][test])


def test_speech_transfer_study_on_4q_end_to_end(tmp_path):
    root = _corpus(tmp_path)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "speech_transfer.py"), "--target", "4q", "--fourq", str(root),
         "--out", str(out), "--columns", "music", "--width", "2", "--pretrain-epochs", "1", "--fe-epochs", "1",
         "--full-epochs", "1", "--fe-splits", "2", "--full-splits", "1", "--threads", "1", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    design = json.loads((out / "design.json").read_text())
    assert design["target"] == "4q" and design["grouped_by"] == "artist"
    artist = {s: a for s, _, a in SONGS}
    music = {artist[s.upper()] for s in design["music_pretraining_songs"]}
    evaluated = {artist[s.upper()] for s in design["evaluation_songs"]}
    assert music and evaluated and not music & evaluated
    cells = [json.loads(line) for line in (out / "cells.jsonl").read_text().splitlines()]
    # random + music columns; per method two FE splits and one Full split
    assert sorted({(c["row"], c["column"]) for c in cells}) == sorted(
        (f"{m}-{k}", c) for m in ("SCAE", "CPC") for k in ("FE", "Full") for c in ("random", "music"))
    assert len(cells) == 12 and all(0 <= c["song_f1"] <= 1 for c in cells)
    report = (out / "speech_transfer.md").read_text()
    assert report.startswith("# Speech-pretrained encoders on 4Q quadrants (artist-grouped folds)")


def test_speech_transfer_refuses_an_annotated_song_without_audio(tmp_path):
    root = _corpus(tmp_path)
    (root / "audio" / "MT03.wav").unlink()
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "speech_transfer.py"), "--target", "4q", "--fourq", str(root),
         "--out", str(tmp_path / "out"), "--columns", "", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode != 0
    assert "no audio for annotated song 'mt03'" in result.stderr


# --- the CNN study on 4Q ------------------------------------------------------------------------------
def test_cnn_study_folds_are_deam_classifiers_artist_folds():
    from types import SimpleNamespace

    from trompa_mer.splits import make_splits

    study = _load("fourq_cnn")
    artists = np.repeat([f"a{i}" for i in range(10)], 2)
    y = np.tile([0, 1, 2, 3], 5)
    folds = study.artist_folds(y, artists, 5, 7)
    data = SimpleNamespace(y=y, groups=np.array([f"s{i:03d}" for i in range(20)]), split_groups=artists)
    expected, _ = make_splits(data, protocol="kfold", cv=5, seed=7)
    assert [t.tolist() for _, t in folds] == [t.tolist() for _, t in expected]
    for train, test in folds:
        assert not set(artists[train]) & set(artists[test])


def test_cnn_study_end_to_end_and_resumes(tmp_path):
    root = _corpus(tmp_path)
    out = tmp_path / "cnn"
    command = [sys.executable, str(ROOT / "experiments" / "fourq_cnn.py"), "--fourq", str(root), "--out", str(out),
               "--n-channels", "2", "--epochs", "1", "-cv", "2", "--run-folds", "1", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    (fold,) = [json.loads(line) for line in (out / "folds.jsonl").read_text().splitlines()]
    assert fold["n_train"] + fold["n_test"] == len(SONGS) and sum(map(sum, fold["confusion"])) == fold["n_test"]
    assert (out / "cnn_0.pt").is_file() and (out / "cnn_0_log.csv").read_text().count("\n") == 2
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert again.returncode == 0 and "fold 0:" not in again.stdout  # the finished fold is not retrained
    too_many = subprocess.run(command[:-2] + ["3", "--quiet"], capture_output=True, text=True, cwd=ROOT,
                              env=env, timeout=600)
    assert too_many.returncode != 0 and "--run-folds 3: only 2 folds" in too_many.stderr

    # compositions with members scored elsewhere on the same folds (fourq_members.py --held-out)
    study = _load("fourq_cnn")
    songs = np.array(sorted(s.lower() for s, _, _ in SONGS))
    y = np.array([int(q[1]) - 1 for _, q, _ in sorted(SONGS)])
    folds = study.artist_folds(y, [a for _, _, a in sorted(SONGS)], 2, 1987)
    with np.load(out / "cnn_0_held_out.npz") as saved:
        cnn = [(saved["test"], saved["proba"])]
    assert np.array_equal(cnn[0][0], folds[0][1]) and np.allclose(cnn[0][1].sum(axis=1), 1)
    truth_proba = np.eye(4)[y[folds[0][1]]]  # a member that is always right
    np.savez(tmp_path / "members.npz", song_ids=songs, oracle_0_test=folds[0][1],
             oracle_0_truth=y[folds[0][1]], oracle_0_proba=truth_proba)
    lines = study.compose(tmp_path / "members.npz", cnn, y, songs)
    assert lines[0].startswith("committee compositions on the 1 fold(s) run") and len(lines) == 4
    scored = {line.split()[-1]: float(line.split()[0]) for line in lines[1:]}
    assert set(scored) == {"oracle", "cnn", "oracle+cnn"} and scored["oracle"] == 1.0
    assert scored["cnn"] == round(fold["f1_macro"], 3)  # a temperature never changes an argmax
    np.savez(tmp_path / "other.npz", song_ids=songs, oracle_0_test=folds[1][1],
             oracle_0_truth=y[folds[1][1]], oracle_0_proba=np.eye(4)[y[folds[1][1]]])
    with pytest.raises(MERError, match="oracle_0_test: expected the same held-out songs as CNN fold 0"):
        study.compose(tmp_path / "other.npz", cnn, y, songs)
    with pytest.raises(MERError, match="song_ids: expected the 4Q songs"):
        study.compose(tmp_path / "members.npz", cnn, y, songs[::-1])


# --- an encoder member beside the feature members (experiments/fourq_members.py --encoder) -----------
def test_member_study_scores_a_random_encoder_member_on_the_same_folds(tmp_path):
    from trompa_mer import pretrain
    from trompa_mer.datasets import fourq

    root = _corpus(tmp_path)
    calibration = tmp_path / "other_corpus"
    calibration.mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        sf.write(calibration / f"c{i}.wav", (0.1 * rng.normal(size=32000)).astype(np.float32), 16000)
    env = dict(os.environ, MER_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "fourq_members.py"), "--fourq", str(root), "-m", "sgd",
         "-cv", "2", "--repeats", "1", "--encoder", "random", "--encoder-width", "2", "--encoder-epochs", "2",
         "--calibration-audio", str(calibration), "--calibration-songs", "2", "--held-out",
         str(tmp_path / "held.npz"), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "encoder member (random): song macro F1" in result.stdout
    compositions = result.stdout.split("committee compositions")[1].splitlines()[1:]
    assert sorted(line.split()[-1] for line in compositions) == ["encoder", "sgd", "sgd+encoder"]
    held = np.load(tmp_path / "held.npz")
    assert sorted(held["song_ids"]) == sorted(s.lower() for s, _, _ in SONGS)
    for algorithm in ("sgd", "encoder"):  # two folds, every song held out once
        tested = np.concatenate([held[f"{algorithm}_{k}_test"] for k in range(2)])
        assert sorted(tested) == list(range(len(SONGS))) and f"{algorithm}_2_test" not in held
        assert held[f"{algorithm}_0_proba"].shape == (len(held[f"{algorithm}_0_test"]), 4)
    assert np.array_equal(held["sgd_1_truth"], held["encoder_1_truth"])

    # in process: the encoder's held-out songs are the other member's, and a mismatch is refused
    study = _load("fourq_members")
    data = fourq.load_4q(root, tmp_path / "cache", progress=False)
    report, _ = pretrain.pretrain(data, ["sgd"], cv=2, protocol="kfold", repeats=1, seed=5,
                                  build_committee=False, progress=False, keep_predictions=True)
    encoder = E.calibrate_batch_norm(E.PatchEncoder("scae", 2), _patches(8))
    held = study.encoder_held_out(data, report["held_out"]["sgd"], encoder, 1, 0)
    for (test, truth, proba), (their_test, their_truth, _) in zip(held, report["held_out"]["sgd"]):
        assert np.array_equal(test, their_test) and np.array_equal(truth, their_truth)
        assert proba.shape == (len(test), 4) and np.allclose(proba.sum(axis=1), 1)
    wrong = [(test, (truth + 1) % 4, proba) for test, truth, proba in report["held_out"]["sgd"]]
    with pytest.raises(MERError, match="the held-out songs do not match"):
        study.encoder_held_out(data, wrong, encoder, 1, 0)


# --- the window XGBoost member's depth and feature selection by nested CV ------------------------------
def test_xgb_nested_study_scores_the_chosen_configuration_on_outer_folds(tmp_path):
    from trompa_mer.datasets import fourq
    from trompa_mer.splits import make_splits

    study = _load("fourq_xgb_nested")
    root = _corpus(tmp_path)
    data = fourq.load_4q(root, tmp_path / "cache", progress=False)
    windows = study.Windows(data, 2)
    # 1 in 2 windows of every song trains; each song keeps its own truth and artist
    for s in range(len(windows.song_ids)):
        rows = np.flatnonzero(windows.song == s)
        assert windows.trains[rows].tolist() == [i % 2 == 0 for i in range(len(rows))]
    assert windows.artist.tolist() == [a for _, _, a in sorted(SONGS)]
    split_windows, _ = make_splits(data, "kfold", 2, 0.2, 1987, 1)
    outer = [(np.unique(windows.song[a]), np.unique(windows.song[b])) for a, b in split_windows]
    configs = [(2, None), (3, 20)]
    lines = []
    nested, fixed, chosen = study.nested_scores(windows, outer, configs, 2, 1987, say=lines.append)
    assert len(nested) == len(chosen) == len(lines) == 2 and set(chosen) <= set(configs)
    for k, best in enumerate(chosen):  # the nested score is the chosen configuration's outer score
        assert nested[k] == fixed[best][k]
        assert fixed[best][k] == windows.song_f1(*best, *outer[k], 1987)
    assert all(0 <= f <= 1 for scores in fixed.values() for f in scores)
    with pytest.raises(SystemExit, match="--features: expected a comma list of positive whole numbers or all"):
        study.parse_args(["--features", "all,0"])
    with pytest.raises(SystemExit, match="--depths: expected a comma list of positive whole numbers, got 'x'"):
        study.parse_args(["--depths", "x"])
