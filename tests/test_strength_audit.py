"""Issue 23, test-strength audit: tests that kill plausible wrong changes the earlier tests let
through. Each test names the mutant it kills (docs/testing.md lists them)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trompa_mer import encoder as E
from trompa_mer import users
from trompa_mer.errors import MERError
from trompa_mer.quadrants import Labels
from trompa_mer.regression import MIN_SPREAD, AVRegressor, residual_spread

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# residuals biased well above the floor on both axes: their mean is far from 0, so the
# deviation about the mean and the root mean square differ by a factor of 2-10
BIASED = np.array([[0.30, -0.20], [0.50, -0.10], [0.40, -0.30], [0.60, -0.15], [0.20, -0.25]])


def rms(residuals):
    residuals = np.asarray(residuals, dtype=np.float64)
    return np.sqrt((residuals ** 2).sum(axis=0) / len(residuals))


class ConstantAV(AVRegressor):
    """A regression member that predicts (0, 0) everywhere: its residuals are its targets, and
    it records what update trains it towards."""

    algorithm = "constant-av"

    def _fit_av(self, X, av, sample_weight):
        self.trained_on = np.array(av)

    def _update_av(self, X, av):
        self.updated_towards = np.array(av)

    def _predict_av(self, X):
        return np.zeros((len(X), 2))


# --- the predictive spread: the root mean square of the residuals -----------------------------
def test_residual_spread_is_the_root_mean_square_not_the_deviation():
    """Mutant: `residuals.std(axis=0)` (deviation about the residuals' mean)."""
    expected = rms(BIASED)                                 # 0.424, 0.209
    assert np.all(expected > MIN_SPREAD)
    assert np.all(np.abs(BIASED.std(axis=0) - expected) > 0.1)   # the mutant is far off
    np.testing.assert_allclose(residual_spread(BIASED), expected, rtol=1e-12)
    np.testing.assert_allclose(residual_spread(-BIASED), expected, rtol=1e-12)
    # the floor, per axis
    np.testing.assert_allclose(residual_spread([[0.01, 0.5], [-0.01, -0.5]]), [MIN_SPREAD, 0.5])
    np.testing.assert_allclose(residual_spread(np.zeros((0, 2))), [0.5, 0.5])


def test_fit_sets_the_rms_of_its_training_residuals():
    """Mutant: AVRegressor.fit using the deviation about the mean."""
    X = np.zeros((len(BIASED), 3), dtype=np.float32)
    member = ConstantAV().fit(X, Labels.from_av(BIASED))
    np.testing.assert_allclose(member.spread, rms(BIASED), rtol=1e-12)


def test_pretraining_spread_is_the_rms_of_held_out_song_residuals():
    """Mutant: pretrain._spread using the deviation about the mean."""
    from trompa_mer.pretrain import _spread

    np.testing.assert_allclose(_spread([BIASED[:2], BIASED[2:]]), rms(BIASED), rtol=1e-12)


def test_simulator_spread_is_the_rms_of_held_out_song_residuals():
    """Mutant: simulate.protocol._fit_regressor using the deviation about the mean."""
    from trompa_mer.simulate.protocol import _fit_regressor

    # 5 songs of 2 windows each; the member predicts 0, so a song's residual is its target mean
    av = np.repeat(BIASED, 2, axis=0)
    av[::2] += 0.05
    av[1::2] -= 0.05                    # windows differ, song means are BIASED
    groups = np.repeat([f"s{i}" for i in range(5)], 2)
    y = Labels.from_av(av).quadrant
    X = np.zeros((10, 3), dtype=np.float32)
    member = _fit_regressor(ConstantAV(), X, y, av, groups, np.arange(10), np.arange(10))
    np.testing.assert_allclose(member.spread, rms(BIASED), rtol=1e-9)


def test_examples_spread_is_the_rms_of_unseen_residuals(tmp_path, monkeypatch):
    """Mutant: examples.train_committee using the deviation about the mean."""
    from trompa_mer import examples

    made = []

    def constant(algorithm, **kwargs):
        made.append(ConstantAV())
        return made[-1]

    monkeypatch.setattr(examples, "make_regressor", constant)
    monkeypatch.setattr(examples.Committee, "save", lambda self, *a, **k: None)
    rng = np.random.default_rng(0)
    av = np.clip(BIASED[rng.integers(0, 5, 40)] + rng.normal(scale=0.02, size=(40, 2)), -1, 1)
    y = Labels.from_av(av).quadrant
    X = rng.normal(size=(40, 260)).astype(np.float32)
    examples.train_committee(X, y, tmp_path / "c", algorithms=("sgd-av",), per_algorithm=2, av=av)
    for member in made:
        unseen = [i for i in range(40) if not np.any(np.all(member.trained_on == av[i].astype(np.float64), axis=1))]
        np.testing.assert_allclose(member.spread, rms(av[unseen]), rtol=1e-9)


# --- quadrant-only answers train towards the centroid --------------------------------------------
def test_quadrant_only_answers_target_the_centroid_itself():
    """Mutant: quadrant-only answers trained towards the corner (±1, ±1) (or the middle)."""
    training = np.array([[0.2, 0.4], [0.6, 0.8], [0.4, -0.2], [-0.5, -0.1], [-0.3, -0.7], [-0.2, 0.9]])
    member = ConstantAV().fit(np.zeros((6, 3), dtype=np.float32), Labels.from_av(training))
    centroids = np.array([[0.4, 0.6], [0.4, -0.2], [-0.4, -0.4], [-0.2, 0.9]])
    np.testing.assert_allclose(member.centroids, centroids, rtol=1e-12)
    # an answer per quadrant, and one with the listener's own values
    answers = Labels([0, 1, 2, 3, 1], [[np.nan, np.nan]] * 4 + [[0.7, -0.9]])
    member.update(np.zeros((5, 3), dtype=np.float32), answers)
    np.testing.assert_allclose(member.updated_towards, np.vstack([centroids, [[0.7, -0.9]]]), rtol=1e-12)


# --- CPC's InfoNCE with hand-set embeddings ----------------------------------------------------
class _Fixed(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, *args):
        return self.value


def test_cpc_infonce_against_a_hand_computation():
    """Mutants: every target index 0 (or any other fixed index) instead of the positives j = i;
    the positives taken from another future step."""
    n, dim = 4, E.CPC_DIM
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, E.CPC_SEQUENCE, dim, generator=g)
    context = torch.randn(n, dim, generator=g)
    model = E.CPC(1).eval()
    model.encoder = _Fixed(z.reshape(n * E.CPC_SEQUENCE, dim))
    model.gru = _Fixed((None, context[None]))
    scales = (0.2, -0.1)
    with torch.no_grad():
        for predictor, scale in zip(model.predictors, scales):
            predictor.weight.copy_(scale * torch.eye(dim))
            predictor.bias.zero_()
        loss = float(model.loss(torch.zeros(n, E.CPC_SEQUENCE, 1, 1)))
    # by hand (float64): for step k the score of candidate j for sequence i is
    # (scale_k c_i) . z_j[past + k]; the loss is the mean over i of -log softmax_j at j = i
    zd, cd = z.double().numpy(), context.double().numpy()
    expected = []
    for k, scale in enumerate(scales):
        scores = (scale * cd) @ zd[:, E.CPC_PAST + k].T
        log_softmax = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        expected.append(-np.mean(np.diag(log_softmax)))
        assert abs(-np.mean(log_softmax[:, 0]) - expected[-1]) > 0.05   # target 0 would differ
    assert loss == pytest.approx(np.mean(expected), rel=1e-5)


# --- SCAE's input noise --------------------------------------------------------------------------
def test_scae_loss_adds_the_noise_to_the_input():
    """Mutants: SCAE trained without input noise (or with another scale, or noise on the
    target): the loss against an independent computation with the same generator. In training
    mode (batch statistics; dropout masks from the same global seed), where the reconstruction
    depends on its input: a fresh network in inference mode gives nearly the same output
    whatever it is fed."""
    torch.manual_seed(0)
    model = E.SCAE(2, mean=torch.full((128,), -2.0), std=torch.full((128,), 1.5)).train()
    x = torch.randn(3, 128, 31, generator=torch.Generator().manual_seed(1))

    def reconstruction_error(inputs, target):
        torch.manual_seed(5)
        return float(torch.mean((model.decoder(model.encoder.conv(inputs)) - target) ** 2))

    with torch.no_grad():
        torch.manual_seed(5)
        loss = float(model.loss(x, torch.Generator().manual_seed(7)))
        clean = ((x + 2.0) / 1.5).unsqueeze(1)
        noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(7))
        expected = reconstruction_error(clean + 0.3 * noise, clean)
        without_noise = reconstruction_error(clean, clean)
        noisy_target = reconstruction_error(clean + 0.3 * noise, clean + 0.3 * noise)
    assert loss == pytest.approx(expected, rel=1e-6)
    assert abs(without_noise - expected) > 2e-3 * expected
    assert abs(noisy_target - expected) > 2e-3 * expected


# --- answers outside -1..1 ---------------------------------------------------------------------
def test_answers_parser_itself_refuses_values_outside_minus_one_to_one():
    """Mutant: the -1..1 check of parse_answer_value removed (the retrain tests caught it only
    because the later check's message differed)."""
    state = users.record_queries(users.new_state("bob", "mc", False, "committee-0000"), ["s1", "s2"])
    for bad in ({"arousal": 1.5, "valence": 0.2}, {"arousal": 0.5, "valence": -1.0001}):
        with pytest.raises(MERError, match=r"answers.json: invalid labels .*s2=.*outside -1\.\.1.*nothing was changed"):
            users.parse_answer_labels({"s1": "Q1", "s2": bad}, state, "answers.json")
    assert users.parse_answer_labels({"s2": {"arousal": -1, "valence": 1}}, state)[1] == {"s2": (-1.0, 1.0)}


def test_the_later_check_names_the_file_and_the_song():
    """Labels' own -1..1 check (what a retrain meets if the parser's check is missing) names
    the place and the song, not just 'labels'."""
    with pytest.raises(MERError, match=r"^answers.json: song 'b': arousal and valence must lie in -1..1, got \(1.5, 0.2\)$"):
        Labels([0, 0], [[np.nan, np.nan], [1.5, 0.2]], where="answers.json", names=["a", "b"])
    with pytest.raises(MERError, match=r"^labels: row 1: its quadrant disagrees"):
        Labels([0, 1], [[np.nan, np.nan], [0.5, 0.2]])


def test_retrain_with_out_of_range_values_past_the_parser_names_file_and_song(tmp_path, monkeypatch):
    """With the parser's check bypassed, loop.retrain's Labels check still refuses, naming the
    answers' source and the song, and the user folder is unchanged."""
    from test_loop_support import TEST_USER, make_windows, snapshot
    from trompa_mer import loop
    from trompa_mer.examples import train_committee
    from trompa_mer.features import FEATURE_NAMES, write_feature_csv

    import pandas as pd

    rng = np.random.default_rng(0)
    y = np.arange(40) % 4
    train_committee(np.concatenate([make_windows(rng, q, 1) for q in y]), y, tmp_path / "pretrained",
                    algorithms=("gnb",), xgb_rounds=2, xgb_update_rounds=1)
    feats = tmp_path / "feats"
    feats.mkdir()
    for i in range(6):
        table = pd.DataFrame(make_windows(rng, i % 4, 3), columns=FEATURE_NAMES)
        table.insert(0, "frameTime", np.arange(3) * 0.5)
        write_feature_csv(table, feats / f"song{i}.csv")
    users_dir = tmp_path / "users"
    loop.create_user(TEST_USER, "mc", users_dir, tmp_path / "pretrained")
    songs = loop.get_hard_tracks(TEST_USER, 2, users_dir, feats)
    songs = songs if isinstance(songs, list) else songs["songs"]
    before = snapshot(users_dir / TEST_USER)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({songs[0]: "Q1", songs[1]: {"arousal": 1.5, "valence": 0.2}}))
    monkeypatch.setattr(loop, "parse_answer_labels",
                        lambda raw, state, source, scale=None: ({songs[0]: 0, songs[1]: 0}, {songs[1]: (1.5, 0.2)}))
    with pytest.raises(MERError, match=rf"answers.json: song '{songs[1]}': arousal and valence must lie in -1..1"):
        loop.retrain(TEST_USER, str(answers), users_dir, feats)
    assert snapshot(users_dir / TEST_USER) == before


# --- the regression members' protocol, value by value (mutation target "regression") ----------
class ShiftedAV(ConstantAV):
    """Predicts a fixed point outside -1..1 (as an unclipped linear model can), records the
    sample weights it is fitted with."""

    algorithm = "shifted-av"
    point = np.array([1.7, -2.5])

    def _fit_av(self, X, av, sample_weight):
        self.trained_on, self.weights = np.array(av), sample_weight

    def _predict_av(self, X):
        return np.tile(self.point, (len(X), 1))


def test_fit_spread_is_target_minus_prediction_with_a_real_member():
    """Mutant: residuals `av + prediction` (a member predicting 0 cannot tell)."""
    X = np.zeros((len(BIASED), 3), dtype=np.float32)
    member = ShiftedAV().fit(X, Labels.from_av(BIASED))
    np.testing.assert_allclose(member.spread, rms(BIASED - ShiftedAV.point), rtol=1e-12)


def test_predictions_and_probabilities_use_the_clipped_point():
    from scipy.stats import norm

    member = ShiftedAV().fit(np.zeros((2, 3), dtype=np.float32), Labels.from_av([[0.5, 0.5], [-0.5, -0.5]]))
    member.set_spread([0.4, 0.8])
    X = np.zeros((3, 3), dtype=np.float32)
    np.testing.assert_array_equal(member.predict_av(X), [[1.0, -1.0]] * 3)
    assert member.predict_av(X[:1]).shape == (1, 2) and member.predict_av(X[:0]).shape == (0, 2)
    a_hi, v_hi = norm.cdf(1.0 / 0.4), norm.cdf(-1.0 / 0.8)          # the clipped point (1, -1)
    expected = [a_hi * v_hi, a_hi * (1 - v_hi), (1 - a_hi) * (1 - v_hi), (1 - a_hi) * v_hi]
    np.testing.assert_allclose(member.predict_proba(X), [expected] * 3, rtol=1e-9)


def test_fit_and_update_refusals_and_sample_weights():
    member = ShiftedAV()
    with pytest.raises(MERError, match=r"^features: cannot fit on zero windows$"):
        member.fit(np.zeros((0, 3), dtype=np.float32), Labels.from_av(np.zeros((0, 2))))
    with pytest.raises(MERError, match=r"^features: 3 rows but 2 labels$"):
        member.fit(np.zeros((3, 5), dtype=np.float32), Labels.from_av([[0.1, 0.1], [0.2, 0.2]]))
    with pytest.raises(MERError, match=r"training needs arousal and valence on every row \(2 rows have only a quadrant\)"):
        member.fit(np.zeros((3, 5), dtype=np.float32), Labels([0, 1, 2], [[0.1, 0.1], [np.nan] * 2, [np.nan] * 2]))
    member.fit(np.zeros((1, 3), dtype=np.float32), Labels.from_av([[0.3, 0.2]]), sample_weight=[2])
    assert member.weights.dtype == np.float64 and member.weights.tolist() == [2.0]
    np.testing.assert_array_equal(member.trained_on, [[0.3, 0.2]])
    member.fit(np.zeros((2, 3), dtype=np.float32), Labels.from_av([[0.3, 0.2], [-0.1, 0.4]]))
    assert member.weights is None
    # update: one row is trained on, zero rows are not, a mismatch names the rows
    member.update(np.zeros((1, 3), dtype=np.float32), Labels([1]))
    np.testing.assert_allclose(member.updated_towards, [member.centroids[1]])
    del member.updated_towards
    member.update(np.zeros((0, 3), dtype=np.float32), Labels(np.zeros(0, dtype=np.int64)))
    assert not hasattr(member, "updated_towards")
    with pytest.raises(MERError, match=r"^features: 2 rows but 1 labels$"):
        member.update(np.zeros((2, 3), dtype=np.float32), Labels([1]))


def test_defaults_and_given_spread_and_centroids():
    from trompa_mer.regression import QUADRANT_MIDDLES

    member = ConstantAV()
    assert member.spread.tolist() == [0.5, 0.5] and member.spread.dtype == np.float64
    np.testing.assert_array_equal(member.centroids, QUADRANT_MIDDLES)
    assert member.centroids is not QUADRANT_MIDDLES
    given = ConstantAV(spread=[1, 2], centroids=[[1, 1], [1, -1], [-1, -1], [-1, 1]])
    assert given.spread.dtype == np.float64 and given.spread.tolist() == [1.0, 2.0]
    assert given.centroids.dtype == np.float64 and given.centroids[1].tolist() == [1.0, -1.0]
    member.set_spread([[0.3, 0.01]])
    assert member.spread.shape == (2,) and member.spread.tolist() == [0.3, MIN_SPREAD]
    with pytest.raises(MERError, match=r"^constant-av member: spread must be finite, got \[nan +1\.\]$"):
        member.set_spread([np.nan, 1.0])


def test_metadata_refusals_name_the_member_and_the_field():
    from trompa_mer.regression import SGDAVMember

    good = {"spread": [0.3, 0.2], "centroids": [[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]]}
    member = SGDAVMember._from_meta({"params": dict(good)})
    assert member.spread.tolist() == [0.3, 0.2]
    where = "sgd-av member metadata: field"
    with pytest.raises(MERError, match=rf"^{where} 'spread' is None, expected positive finite numbers of shape \(2,\)$"):
        SGDAVMember._from_meta({})
    with pytest.raises(MERError, match=rf"^{where} 'spread' is \[0\.0, 0\.2\], expected positive finite"):
        SGDAVMember._from_meta({"params": {**good, "spread": [0.0, 0.2]}})
    with pytest.raises(MERError, match=rf"^{where} 'centroids' is None, expected finite numbers of shape \(4, 2\)$"):
        SGDAVMember._from_meta({"params": {"spread": [0.3, 0.2]}})


def test_labels_refusals_in_full():
    """quadrants.Labels (mutation target "quadrants"): each refusal and its message."""
    for bad in (np.zeros((2, 2), dtype=int), [4], [0.0, 1.0], [-1]):
        with pytest.raises(MERError, match=r"^labels: expected quadrant indices 0..3 \(one per row\), got "):
            Labels(bad)
    with pytest.raises(MERError, match=r"got array\(\[0, 1, 2, 3, 4\]\)$"):
        Labels([0, 1, 2, 3, 4, 5])
    with pytest.raises(MERError, match=r"^labels: 2 rows but arousal/valence of shape \(1, 2\)$"):
        Labels([0, 1], [[0.5, 0.5]])
    with pytest.raises(MERError, match=r"^labels: arousal and valence must be given together as finite numbers$"):
        Labels([0], [[0.5, np.nan]])
    with pytest.raises(MERError, match=r"^labels: arousal/valence targets contain NaN or infinite values$"):
        Labels.from_av([[0.5, np.inf]])
    labels = Labels([0, 3], [[1, 0], [np.nan, np.nan]])
    assert labels.av.dtype == np.float64 and labels.has_av.tolist() == [True, False]
    assert repr(labels) == "Labels(2 rows, 1 with arousal/valence)"
    assert Labels([0], [[1, 0]]).av.dtype == np.float64      # integers given: stored as float64
    edge = Labels.from_av([[1 + 1e-9, -1 - 1e-9]])          # the rounding tolerance itself is accepted
    assert edge.quadrant.tolist() == [1]
