"""Query strategies against the peers (issue 21): each strategy's scores equal modAL 0.4.2.1's or
scikit-activeml 1.0.1's to 1e-12 on random committee probabilities, on probabilities full of
ties, and on a real committee's (TROMPA-MER leave-user-out), plus cases computed by hand.

The peers are development dependencies (requirements-dev.txt); without them these tests skip.
They are called through their own functions with stand-in committees that hand them our
probabilities, so both sides score exactly the same numbers.
"""
import warnings

import numpy as np
import pytest

from conftest import shared_path
from trompa_mer import consensus, strategies
from trompa_mer.errors import MERError

modal_disagreement = pytest.importorskip("modAL.disagreement")
modal_density = pytest.importorskip("modAL.density")
modal_batch = pytest.importorskip("modAL.batch")
modal_uncertainty = pytest.importorskip("modAL.uncertainty")
skactiveml_qbc = pytest.importorskip("skactiveml.pool._query_by_committee")
skactiveml_us = pytest.importorskip("skactiveml.pool._uncertainty_sampling")

TOL = 1e-12


class StandInCommittee:
    """What modAL's committee measures read, answered from fixed members x songs x 4 probabilities
    (a member's vote is its argmax, as scikit-learn's predict)."""

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=float)
        self.classes_ = np.arange(4)

    def __len__(self):
        return self.proba.shape[0]

    def __iter__(self):
        return iter(range(self.proba.shape[0]))

    def vote(self, X):
        return self.proba.argmax(axis=2).T

    def vote_proba(self, X):
        return self.proba.transpose(1, 0, 2)

    def predict_proba(self, X):
        return self.proba.mean(axis=0)


class StandInLearner:
    """What modAL's ranked_batch reads of a learner: its labelled rows."""

    on_transformed = False

    def __init__(self, labelled):
        self.X_training = labelled


def _random_proba(seed, members=7, songs=400):
    return np.random.default_rng(seed).dirichlet(np.full(4, 0.7), size=(members, songs))


def _tied_proba():
    """Rows built to tie: uniform members, identical members, two tied top quadrants, zeros,
    one-hot votes split 2-2, and songs that repeat another song's probabilities exactly."""
    rows = [
        np.full((5, 4), 0.25),
        np.tile([0.7, 0.1, 0.1, 0.1], (5, 1)),
        np.tile([0.4, 0.4, 0.1, 0.1], (5, 1)),
        np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], float),
        np.array([[0.5, 0.5, 0, 0], [0.5, 0, 0.5, 0], [0, 0.5, 0.5, 0], [0.25] * 4, [0, 0, 0, 1]], float),
        np.array([[0.3, 0.3, 0.2, 0.2]] * 4 + [[0.2, 0.2, 0.3, 0.3]]),
    ]
    proba = np.stack(rows, axis=1)
    return np.concatenate([proba, proba[:, ::-1], proba], axis=1)  # repeated songs tie exactly


@pytest.fixture(scope="module")
def real_committee():
    """A real committee's probabilities and features: the TROMPA-MER benchmark's leave-user-out
    committee (gnb, sgd, xgb; 15 members) of its most active listener, on its 311 songs."""
    shared_path("trompa", "annotations.json")
    from trompa_mer.simulate import load_annotation_table, load_features, prepare_annotations, pretraining_labels
    from trompa_mer.simulate.protocol import _songs, pretrain_committee, standardize

    features = load_features(shared_path("trompa", "track_features.csv"))
    annotations = prepare_annotations(load_annotation_table(shared_path("trompa", "annotations.json")))
    user = annotations["user"].value_counts().index[0]
    committee = pretrain_committee(features, pretraining_labels(annotations, user, features),
                                   ["gnb", "sgd", "xgb"], {}, seed=1987)
    songs = [s for s in sorted(set(annotations["song"])) if features.has(s)]
    X, offsets = features.gather(songs)
    scaled = standardize(committee, X)
    proba = committee.song_proba(_songs(scaled, offsets))
    song_features = np.add.reduceat(scaled.astype(float), offsets[:-1], axis=0) / np.diff(offsets)[:, None]
    return proba, song_features


def _cases(real=None):
    cases = [_random_proba(0), _random_proba(1, members=15, songs=300), _random_proba(2, members=2, songs=50),
             _tied_proba()]
    return cases if real is None else [*cases, real[0]]


def _peer_scores(name, proba):
    """The peer's scores for one of our strategies on `proba` (members x songs x 4)."""
    committee, X = StandInCommittee(proba), np.zeros((proba.shape[1], 1))
    if name == "consensus-entropy":
        return modal_disagreement.consensus_entropy(committee, X)
    if name == "vote-entropy":
        return modal_disagreement.vote_entropy(committee, X)
    if name == "kl-max":
        return modal_disagreement.KL_max_disagreement(committee, X)
    if name == "margin":
        return 1.0 - modal_uncertainty.classifier_margin(committee, X)
    if name == "least-confident":
        return modal_uncertainty.classifier_uncertainty(committee, X)
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["consensus-entropy", "vote-entropy", "kl-max", "margin", "least-confident"])
def test_scores_equal_modal(name, real_committee):
    for proba in _cases(real_committee):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # modAL's 0 log 0 on one-hot votes
            expected = _peer_scores(name, proba)
        np.testing.assert_allclose(strategies.scores_for(name, proba), expected, rtol=0, atol=TOL)


def test_scores_equal_scikit_activeml(real_committee):
    for proba in _cases(real_committee):
        consensus_proba = proba.mean(axis=0)
        checks = {
            "vote-entropy": skactiveml_qbc.vote_entropy(proba.argmax(axis=2).T, np.arange(4)),
            "margin": skactiveml_us.uncertainty_scores(consensus_proba, method="margin_sampling"),
            "least-confident": skactiveml_us.uncertainty_scores(consensus_proba, method="least_confident"),
            "consensus-entropy": skactiveml_us.uncertainty_scores(consensus_proba, method="entropy"),
        }
        for name, expected in checks.items():
            np.testing.assert_allclose(strategies.scores_for(name, proba), expected, rtol=0, atol=TOL, err_msg=name)


def test_mean_kl_equals_scikit_activeml(real_committee):
    """scikit-activeml floors probabilities at eps (1e-7 by default) and renormalizes: on rows
    already above the floor that changes nothing; with a floor below every probability (1e-300)
    it is the plain definition on the real committee's tiny probabilities too."""
    for proba in _cases(real_committee):
        floored = np.clip(proba, 1e-7, 1)
        floored /= floored.sum(axis=2, keepdims=True)
        np.testing.assert_allclose(strategies.kl_mean(floored),
                                   skactiveml_qbc.average_kl_divergence(floored.copy()), rtol=0, atol=TOL)
    real = real_committee[0]
    np.testing.assert_allclose(strategies.kl_mean(real),
                               skactiveml_qbc.average_kl_divergence(real.copy(), eps=1e-300), rtol=0, atol=TOL)


def test_mean_kl_is_the_mean_of_modals_member_divergences(real_committee):
    from scipy.stats import entropy

    for proba in _cases(real_committee):
        mean = proba.mean(axis=0)
        each = np.stack([entropy(member.T, qk=mean.T) for member in proba])
        np.testing.assert_allclose(strategies.kl_mean(proba), each.mean(axis=0), rtol=0, atol=TOL)
        np.testing.assert_allclose(strategies.member_kl(proba), each, rtol=0, atol=TOL)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_information_density_equals_modal(metric, real_committee):
    rng = np.random.default_rng(3)
    for features in (rng.normal(size=(300, 11)), real_committee[1]):
        np.testing.assert_allclose(strategies.information_density(features, metric),
                                   modal_density.information_density(features, metric), rtol=0, atol=TOL)


def test_information_density_of_repeated_songs_is_exact():
    """Songs that repeat another's features: modAL's euclidean distances (scikit-learn's
    |a|^2 + |b|^2 - 2ab) leave ~1e-7 of rounding for a distance that is 0, ~1e-9 in the
    density; ours computes those pairs from their differences, and equals the definition
    written with scipy's cdist (differences throughout) to 1e-12."""
    from scipy.spatial.distance import cdist

    random = np.random.default_rng(3).normal(size=(300, 11))
    with_repeats = np.concatenate([random[:50], random[:50], np.zeros((2, 11))])
    for metric in ("euclidean", "cosine"):
        exact = (1.0 / (1.0 + cdist(with_repeats, with_repeats, metric=metric))).mean(axis=1) \
            if metric == "euclidean" else modal_density.information_density(with_repeats, metric)
        np.testing.assert_allclose(strategies.information_density(with_repeats, metric), exact, rtol=0, atol=TOL)
    assert np.abs(strategies.information_density(with_repeats)
                  - modal_density.information_density(with_repeats, "euclidean")).max() < 1e-8


def test_density_weight_multiplies_any_strategy(real_committee):
    proba, features = real_committee
    for name in ("margin", "kl-max", "consensus-entropy"):
        for suffix, metric in (("+density", "euclidean"), ("+density-cosine", "cosine")):
            expected = strategies.scores_for(name, proba) * modal_density.information_density(features, metric)
            np.testing.assert_allclose(strategies.scores_for(name + suffix, proba, features), expected,
                                       rtol=0, atol=TOL)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ranked_batch_equals_modal(metric, real_committee):
    """The same songs in the same order, and each pick's score, as modAL's ranked_batch given the
    same uncertainty and labelled rows (ties: every song equally uncertain, repeated rows)."""
    rng = np.random.default_rng(4)
    pool = rng.normal(size=(400, 11))
    tied_pool = np.concatenate([pool[:100], pool[:100]])
    real_features = real_committee[1]
    cases = [(pool, rng.random(400), rng.normal(size=(20, 11))),
             (tied_pool, np.full(200, 0.5), pool[300:305]),
             (real_features[40:], strategies.consensus_entropy(real_committee[0][:, 40:]) / np.log(4),
              real_features[:40])]
    for features, uncertainty, labelled in cases:
        for q in (1, 10):
            expected, _ = modal_batch.ranked_batch(StandInLearner(labelled), features, uncertainty, q, metric, None)
            chosen, scores = strategies.ranked_batch(uncertainty, features, labelled, q, metric)
            assert chosen.tolist() == expected.tolist()
            assert np.all(np.isfinite(scores)) and len(scores) == q


def test_ranked_batch_scores_by_hand():
    """Two labelled songs at 0 and 10 on a line; candidates at 1, 5 and 9 with uncertainty
    0.2, 0.1, 0.3. First pick: alpha = 3/5; scores 0.6*(1-1/2)+0.4*0.2 = 0.38,
    0.6*(1-1/6)+0.4*0.1 = 0.54, 0.6*(1-1/2)+0.4*0.3 = 0.42: the song at 5. Second: alpha = 2/5,
    nearest distances 1 and 1: 0.4*0.5+0.6*0.2 = 0.32 and 0.4*0.5+0.6*0.3 = 0.38: the song at 9."""
    features = np.array([[1.0], [5.0], [9.0]])
    chosen, scores = strategies.ranked_batch([0.2, 0.1, 0.3], features, np.array([[0.0], [10.0]]), 2)
    assert chosen.tolist() == [1, 2]
    np.testing.assert_allclose(scores, [0.6 * (1 - 1 / 6) + 0.4 * 0.1, 0.4 * 0.5 + 0.6 * 0.3], rtol=0, atol=TOL)


def test_ranked_batch_without_labelled_songs_starts_from_the_most_uncertain():
    features = np.array([[0.0], [0.1], [5.0]])
    chosen, scores = strategies.ranked_batch([0.5, 0.9, 0.1], features, None, 3)
    # then alpha = 2/3: 2/3*(1-1/1.1)+1/3*0.5 = 0.227 vs 2/3*(1-1/5.9)+1/3*0.1 = 0.587
    assert chosen.tolist() == [1, 2, 0]
    assert scores[0] == 0.9


def test_max_std_equals_scikit_activeml_query_by_committee():
    """scikit-activeml's QueryByCommittee on regressors scores the std of their predictions;
    ours adds arousal's and valence's."""
    from sklearn.base import BaseEstimator, RegressorMixin
    from skactiveml.pool import QueryByCommittee
    from skactiveml.regressor import SklearnRegressor

    class Lookup(RegressorMixin, BaseEstimator):
        """Predicts fixed values for the song whose index is the row's only feature."""

        def __init__(self, values=None):
            self.values = values

        def fit(self, X, y):
            return self

        def predict(self, X):
            return np.asarray(self.values)[np.asarray(X)[:, 0].astype(int)]

    rng = np.random.default_rng(5)
    av = rng.normal(size=(5, 60, 2))
    av[:, :10] = av[0, :10]  # ten songs every regressor agrees on: std 0, tied
    X = np.arange(60, dtype=float)[:, None]
    y = np.full(60, np.nan)
    total = np.zeros(60)
    for axis in range(2):
        ensemble = [SklearnRegressor(Lookup(av[m, :, axis])).fit(X[:1], [0.0]) for m in range(len(av))]
        _, utilities = QueryByCommittee().query(X, y, ensemble=ensemble, fit_ensemble=False, return_utilities=True)
        total += utilities[0]
    np.testing.assert_allclose(strategies.max_std(av), total, rtol=0, atol=TOL)
    assert np.all(strategies.max_std(av)[:10] < 1e-15)  # 0 but for the mean's rounding


# --- by hand ----------------------------------------------------------------------------------
def test_scores_by_hand():
    # two members, one song: [1, 0, 0, 0] and [0.5, 0.5, 0, 0]; mean [0.75, 0.25, 0, 0]
    proba = np.array([[[1.0, 0, 0, 0]], [[0.5, 0.5, 0, 0]]])
    ln = np.log
    assert strategies.consensus_entropy(proba)[0] == pytest.approx(-(0.75 * ln(0.75) + 0.25 * ln(0.25)), abs=TOL)
    # both vote Q1 (the second's tie goes to the first quadrant): vote entropy 0
    assert strategies.vote_entropy(proba)[0] == 0
    kl_first = ln(1 / 0.75)
    kl_second = 0.5 * ln(0.5 / 0.75) + 0.5 * ln(0.5 / 0.25)
    assert strategies.kl_max(proba)[0] == pytest.approx(max(kl_first, kl_second), abs=TOL)
    assert strategies.kl_mean(proba)[0] == pytest.approx((kl_first + kl_second) / 2, abs=TOL)
    assert strategies.margin(proba)[0] == pytest.approx(1 - (0.75 - 0.25), abs=TOL)
    assert strategies.least_confident(proba)[0] == pytest.approx(0.25, abs=TOL)
    # three members voting Q1, Q2, Q2: entropy of (1/3, 2/3)
    votes = np.array([[[0.9, 0.1, 0, 0]], [[0.2, 0.8, 0, 0]], [[0.1, 0.6, 0.3, 0]]])
    assert strategies.vote_entropy(votes)[0] == pytest.approx(-(ln(1 / 3) / 3 + 2 * ln(2 / 3) / 3), abs=TOL)
    # regressors at arousal 0.1, 0.3 and valence -0.2, 0.2: std 0.1 + 0.2
    assert strategies.max_std(np.array([[[0.1, -0.2]], [[0.3, 0.2]]]))[0] == pytest.approx(0.3, abs=TOL)


def test_density_by_hand():
    # three songs on a line at 0, 1, 3: euclidean similarities 1/(1+d)
    features = np.array([[0.0], [1.0], [3.0]])
    expected = [(1 + 1 / 2 + 1 / 4) / 3, (1 / 2 + 1 + 1 / 3) / 3, (1 / 4 + 1 / 3 + 1) / 3]
    np.testing.assert_allclose(strategies.information_density(features), expected, rtol=0, atol=TOL)
    # cosine: (1, 0) and (0, 1) are at distance 1, (2, 0) at 0 from (1, 0)
    cosine = strategies.information_density(np.array([[1.0, 0], [0, 1.0], [2.0, 0]]), "cosine")
    np.testing.assert_allclose(cosine, [(1 + 0.5 + 1) / 3, (0.5 + 1 + 0.5) / 3, (1 + 0.5 + 1) / 3], rtol=0, atol=TOL)


def test_default_strategy_is_mode_mc_bit_for_bit():
    proba = _random_proba(6)
    ids = [f"s{i:03d}" for i in range(proba.shape[1])]
    expected = consensus.mode_scores("mc", ids, machine_proba=consensus.machine_consensus(proba))
    assert strategies.scores_for(strategies.DEFAULT_STRATEGY, proba).tobytes() == expected.tobytes()


# --- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["entropy", "", "ranked-batch+density", "margin+density-manhattan", "Margin"])
def test_unknown_names_are_refused_with_the_valid_ones(name):
    with pytest.raises(MERError, match="--strategy: expected one of consensus-entropy, vote-entropy") as err:
        strategies.parse_strategy(name)
    assert repr(name) in str(err.value) and "+density-cosine" in str(err.value)


def test_bad_inputs_are_refused_by_name():
    with pytest.raises(MERError, match=r"members x songs x 4, got shape \(3, 4\)"):
        strategies.consensus_entropy(np.zeros((3, 4)))
    with pytest.raises(MERError, match="needs the songs' features"):
        strategies.scores_for("margin+density", _random_proba(0))
    with pytest.raises(MERError, match=r"expected 400 songs x columns, got shape \(3, 2\)"):
        strategies.scores_for("margin+density", _random_proba(0), np.zeros((3, 2)))
    with pytest.raises(MERError, match="finite"):
        strategies.information_density(np.array([[np.nan, 1.0]]))
    with pytest.raises(MERError, match="similarity metric: expected one of euclidean, cosine"):
        strategies.information_density(np.zeros((2, 2)), "manhattan")
    with pytest.raises(MERError, match="sgd-av, xgb-av"):
        strategies.scores_for("max-std", _random_proba(0), member_av=np.zeros((2, 400, 4)))
    with pytest.raises(MERError, match="labelled song features: expected 2 columns"):
        strategies.ranked_batch([0.1, 0.2], np.zeros((2, 2)), np.zeros((1, 3)), 1)
    with pytest.raises(MERError, match="number of queries"):
        strategies.ranked_batch([0.1, 0.2], np.zeros((2, 2)), None, 0)
    with pytest.raises(MERError, match="chooses a batch"):
        strategies.scores_for("ranked-batch", _random_proba(0))
