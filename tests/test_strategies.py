"""The strategy registry and the choice of a round's songs (trompa_mer.strategies), in-process."""
import numpy as np
import pytest

from trompa_mer import consensus, strategies
from trompa_mer.errors import MERError


def _proba(seed=0, members=5, songs=12):
    return np.random.default_rng(seed).dirichlet(np.full(4, 0.7), size=(members, songs))


IDS = np.array([f"s{i:02d}" for i in range(12)])


def test_registry_names_and_density_variants():
    assert strategies.DEFAULT_STRATEGY == "consensus-entropy"
    assert list(strategies.STRATEGIES) == ["consensus-entropy", "vote-entropy", "kl-max", "kl-mean", "margin",
                                           "least-confident", "ranked-batch", "max-std"]
    names = strategies.strategy_names()
    assert "ranked-batch+density" not in names
    assert {"margin+density", "margin+density-cosine", "max-std+density"} <= set(names)
    assert len(names) == 8 + 2 * 7
    assert strategies.parse_strategy("kl-max")[1] is None
    assert strategies.parse_strategy("kl-max+density")[1] == "euclidean"
    assert strategies.parse_strategy("kl-max+density-cosine") == (strategies.STRATEGIES["kl-max"], "cosine")


def test_needs():
    assert strategies.needs("margin") == frozenset()
    assert strategies.needs("margin+density") == {"features"}
    assert strategies.needs("ranked-batch") == {"features"}
    assert strategies.needs("max-std") == {"av"}
    assert strategies.needs("max-std+density-cosine") == {"av", "features"}


def test_choose_ranks_like_select_queries_and_skips_asked_songs():
    proba = _proba()
    scores = strategies.kl_max(proba)
    chosen, score_of = strategies.choose("kl-max", IDS, 3, proba, asked=["s00", "s05"])
    assert chosen == consensus.select_queries(IDS, scores, 3, asked=["s00", "s05"])
    assert not {"s00", "s05"} & set(chosen)
    assert score_of == {s: scores[list(IDS).index(s)] for s in chosen}


def test_choose_balanced_takes_quotas_per_predicted_quadrant():
    proba = _proba(1)
    predicted = proba.mean(axis=0).argmax(axis=1)
    chosen, _ = strategies.choose("margin", IDS, 4, proba, balanced=True)
    expected = consensus.select_queries(IDS, strategies.margin(proba), 4, balanced=True, predicted=predicted)
    assert chosen == expected
    assert chosen != consensus.select_queries(IDS, strategies.margin(proba), 4) or len(set(predicted)) == 1


def test_choose_weights_by_density():
    proba = _proba(2)
    features = np.random.default_rng(2).normal(size=(12, 3))
    chosen, score_of = strategies.choose("least-confident+density-cosine", IDS, 12, proba, features=features)
    weighted = strategies.least_confident(proba) * strategies.information_density(features, "cosine")
    assert chosen == consensus.select_queries(IDS, weighted, 12)
    assert [score_of[s] for s in chosen] == sorted(weighted, reverse=True)


def test_choose_ranked_batch_orders_candidates_by_song_id():
    """Ranked batch sees the songs not asked, sorted by id: ties go to the lowest id whatever
    the pool's order, and the uncertainty is consensus entropy / ln 4."""
    proba = np.tile(np.array([0.25, 0.25, 0.25, 0.25]), (2, 12, 1))  # every song equally uncertain
    features = np.zeros((12, 2))  # and equally far from everything: a tie everywhere
    shuffled = np.random.default_rng(3).permutation(12)
    chosen, score_of = strategies.choose("ranked-batch", IDS[shuffled], 3, proba[:, shuffled],
                                         features=features[shuffled], asked=["s00"])
    assert chosen == ["s01", "s02", "s03"]
    assert score_of["s01"] == pytest.approx(1.0)
    proba = _proba(4)
    features = np.random.default_rng(4).normal(size=(12, 2))
    labelled = features[:2]
    chosen, _ = strategies.choose("ranked-batch", IDS, 3, proba, features=features, labelled_features=labelled,
                                  asked=["s00", "s01"])
    keep = np.arange(2, 12)
    picks, _ = strategies.ranked_batch(strategies.consensus_entropy(proba[:, keep]) / np.log(4), features[keep],
                                       labelled, 3)
    assert chosen == IDS[keep][picks].tolist()


def test_choose_ranked_batch_refuses_balanced_users():
    with pytest.raises(MERError, match="cannot be combined with balanced quotas"):
        strategies.choose("ranked-batch", IDS, 3, _proba(), features=np.zeros((12, 2)), balanced=True)


def test_choose_max_std_reads_the_regression_members():
    av = np.zeros((3, 12, 2))
    av[:, 7, 0] = [0.0, 0.5, 1.0]
    chosen, _ = strategies.choose("max-std", IDS, 1, _proba(), member_av=av)
    assert chosen == ["s07"]


def test_ranked_batch_stops_at_the_pool_size_and_never_repeats():
    chosen, scores = strategies.ranked_batch([0.3, 0.2], np.array([[0.0], [1.0]]), np.array([[5.0]]), 10)
    assert sorted(chosen.tolist()) == [0, 1] and len(scores) == 2


def test_ranked_batch_alpha_moves_from_diversity_to_uncertainty():
    """With many songs left, distance from the labelled songs dominates; the uncertainty only
    decides once few are left (alpha = left / (left + known))."""
    features = np.array([[0.0], [100.0]])
    # the near song is more uncertain, the far one is new: alpha = 2/3 favours the far one
    chosen, _ = strategies.ranked_batch([0.9, 0.1], features, np.array([[0.0], ]), 1)
    assert chosen.tolist() == [1]


def test_vote_entropy_counts_each_members_vote_once():
    proba = np.zeros((4, 2, 4))
    proba[:, 0, 0] = 1.0          # song 0: all four vote Q1
    proba[[0, 1], 1, 2] = 1.0     # song 1: two vote Q3, two vote Q4
    proba[[2, 3], 1, 3] = 1.0
    np.testing.assert_allclose(strategies.vote_entropy(proba), [0.0, np.log(2)], rtol=0, atol=1e-15)
    assert strategies.votes(proba).tolist() == [[0, 2], [0, 2], [0, 3], [0, 3]]


def test_member_kl_ignores_quadrants_a_member_rules_out():
    proba = np.array([[[0.5, 0.5, 0.0, 0.0]], [[0.0, 0.5, 0.5, 0.0]]])
    # mean [0.25, 0.5, 0.25, 0]; each member: 0.5 ln 2 + 0.5 ln 1
    np.testing.assert_allclose(strategies.member_kl(proba), [[0.5 * np.log(2)], [0.5 * np.log(2)]], rtol=0,
                               atol=1e-15)


def test_max_std_shape_checks():
    with pytest.raises(MERError, match="regression members x songs x 2"):
        strategies.max_std(np.zeros((0, 3, 2)))
    with pytest.raises(MERError, match="regression members x songs x 2"):
        strategies.max_std(np.zeros((3, 2)))


def test_member_proba_shape_checks():
    for shape in [(0, 3, 4), (2, 3, 3), (3, 4)]:
        with pytest.raises(MERError, match="members x songs x 4"):
            strategies.kl_max(np.zeros(shape))


def test_features_shape_checks():
    with pytest.raises(MERError, match=r"expected songs x columns, got shape \(3,\)"):
        strategies.information_density(np.zeros(3))
    with pytest.raises(MERError, match="ranked batch|songs x columns"):
        strategies.ranked_batch([0.1, 0.2], np.zeros((3, 2)), None, 1)
    # an empty labelled set in any shape means none
    chosen, _ = strategies.ranked_batch([0.1, 0.2], np.zeros((2, 2)), np.zeros((0,)), 1)
    assert chosen.tolist() == [1]


def test_density_weight_beta():
    scores = np.array([1.0, 2.0, 3.0])
    features = np.array([[0.0], [1.0], [3.0]])
    density = strategies.information_density(features)
    np.testing.assert_allclose(strategies.density_weighted(scores, features, beta=2.0), scores * density ** 2)
    np.testing.assert_allclose(strategies.density_weighted(scores, features, beta=0.0), scores)


# --- cases the mutation run found untested (docs/testing.md, "strategies") --------------------
def test_one_member_and_integer_probabilities_are_accepted():
    """A committee of one member is a committee (its own entropy, no disagreement); one-hot
    integer rows are probabilities too."""
    one = np.array([[[0.5, 0.5, 0.0, 0.0]]])
    np.testing.assert_allclose(strategies.consensus_entropy(one), [np.log(2)], rtol=0, atol=1e-15)
    assert strategies.kl_max(one).tolist() == [0.0] and strategies.vote_entropy(one).tolist() == [0.0]
    integers = [[[1, 0, 0, 0]], [[0, 1, 0, 0]]]
    np.testing.assert_allclose(strategies.kl_max(integers), [np.log(2)], rtol=0, atol=1e-15)
    np.testing.assert_allclose(strategies.kl_mean(integers), [np.log(2)], rtol=0, atol=1e-15)
    np.testing.assert_allclose(strategies.margin(integers), [1.0], rtol=0, atol=1e-15)
    assert strategies.max_std(np.array([[[0.2, -0.4]]])).tolist() == [0.0]  # one regressor


def test_margin_is_the_gap_between_the_top_two_whatever_their_order():
    proba = np.array([[[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.3, 0.1, 0.4, 0.2], [0.05, 0.6, 0.05, 0.3]]])
    np.testing.assert_allclose(strategies.margin(proba), [0.9, 0.9, 0.9, 0.7], rtol=0, atol=1e-15)


def test_distances_of_close_songs_far_from_the_origin_are_exact():
    """Two songs 1e-3 apart at norm ~1e4: the |a|^2 + |b|^2 - 2ab expansion would lose the
    distance in rounding; the close pairs are computed from their differences."""
    base = np.full((1, 4), 5000.0)
    songs = np.concatenate([base, base + [[1e-3, 0, 0, 0]], base + [[0, 2e-3, 0, 0]], -base])
    squared = (songs * songs).sum(axis=1)
    distances = strategies._distance_block(songs, songs, "euclidean", squared)
    np.testing.assert_allclose(distances[0, :3], [0.0, 1e-3, 2e-3], rtol=1e-9, atol=0)
    np.testing.assert_allclose(distances[1, 2], np.hypot(1e-3, 2e-3), rtol=1e-9, atol=0)
    np.testing.assert_allclose(distances[0, 3], 2 * 5000.0 * 2, rtol=1e-12)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_chunks_give_the_same_answers(monkeypatch, metric):
    """Pairwise work runs in blocks of rows (_CHUNK_ROWS): blocks of 3 give what one block gives."""
    rng = np.random.default_rng(8)
    features, labelled = rng.normal(size=(20, 3)), rng.normal(size=(7, 3))
    uncertainty = rng.random(20)
    whole = strategies.information_density(features, metric), strategies.ranked_batch(
        uncertainty, features, labelled, 5, metric)
    monkeypatch.setattr(strategies, "_CHUNK_ROWS", 3)
    np.testing.assert_allclose(strategies.information_density(features, metric), whole[0], rtol=0, atol=1e-15)
    chunked = strategies.ranked_batch(uncertainty, features, labelled, 5, metric)
    assert chunked[0].tolist() == whole[1][0].tolist()
    np.testing.assert_allclose(chunked[1], whole[1][1], rtol=0, atol=1e-15)


def test_cosine_ranked_batch_compares_directions_not_lengths():
    """Cosine: a labelled song at (1, 0) makes (5, 0) as known as (1, 0) itself; (0, 1) is new."""
    chosen, scores = strategies.ranked_batch([0.5, 0.5], np.array([[5.0, 0.0], [0.0, 1.0]]),
                                             np.array([[1.0, 0.0]]), 1, "cosine")
    assert chosen.tolist() == [1]
    assert scores[0] == pytest.approx(2 / 3 * (1 - 1 / 2) + 1 / 3 * 0.5)
    assert chosen.dtype.kind == "i"


def test_choose_never_asks_an_asked_song_even_the_top_one():
    proba = _proba(9)
    top_two = consensus.select_queries(IDS, strategies.kl_mean(proba), 2)
    chosen, _ = strategies.choose("kl-mean", IDS, 3, proba, asked=top_two)
    assert not set(top_two) & set(chosen)
    assert chosen == consensus.select_queries(IDS, strategies.kl_mean(proba), 5)[2:]


def test_choose_ranked_batch_checks_the_features_length():
    with pytest.raises(MERError, match=r"song features: expected 12 songs x columns, got shape \(3, 2\)"):
        strategies.choose("ranked-batch", IDS, 2, _proba(), features=np.zeros((3, 2)))


def test_error_messages_word_for_word():
    with pytest.raises(MERError) as err:
        strategies.parse_strategy("nope")
    assert str(err.value) == (
        "--strategy: expected one of consensus-entropy, vote-entropy, kl-max, kl-mean, margin, least-confident, "
        "ranked-batch, max-std, or one of consensus-entropy, vote-entropy, kl-max, kl-mean, margin, "
        "least-confident, max-std followed by +density or +density-cosine, got 'nope'")
    with pytest.raises(MERError) as err:
        strategies.information_density(None)
    assert str(err.value).startswith("song features: this strategy needs the songs' features")
    with pytest.raises(MERError) as err:
        strategies.ranked_batch([0.1], np.zeros((1, 2)), np.array([[np.inf, 0.0]]), 1)
    assert str(err.value) == "labelled song features: expected finite numbers, found NaN or infinity"
    with pytest.raises(MERError) as err:
        strategies.ranked_batch([0.1, 0.2], np.zeros((2, 2)), np.zeros((1, 2)), 1, "chebyshev")
    assert str(err.value) == "similarity metric: expected one of euclidean, cosine, got 'chebyshev'"


def test_cosine_normalizes_short_vectors_too():
    """Vectors shorter than 1 are scaled up to unit length like longer ones."""
    short = np.array([[0.1, 0.0], [0.0, 0.2], [0.3, 0.3]])
    np.testing.assert_allclose(strategies.information_density(short, "cosine"),
                               strategies.information_density(short * 100, "cosine"), rtol=0, atol=1e-15)
    cos45 = 1 / (1 + (1 - np.sqrt(0.5)))
    expected = [(1 + 1 / 2 + cos45) / 3, (1 / 2 + 1 + cos45) / 3, (cos45 + cos45 + 1) / 3]
    np.testing.assert_allclose(strategies.information_density(short, "cosine"), expected, rtol=0, atol=1e-15)


def test_integer_features_and_uncertainty_are_numbers_like_any_other():
    features = np.array([[0, 0], [3, 4], [6, 8]])
    np.testing.assert_allclose(strategies.information_density(features),
                               strategies.information_density(features.astype(float)), rtol=0, atol=0)
    chosen, scores = strategies.ranked_batch([0, 1, 0], features, None, 3)
    assert chosen.tolist() == [1, 0, 2]  # 0 and 2 are both 5 from song 1: the first wins the tie
    assert scores[0] == 1.0


def test_ranked_batch_of_an_empty_pool_is_empty():
    chosen, scores = strategies.ranked_batch([], np.zeros((0, 2)), None, 3)
    assert chosen.tolist() == [] and chosen.dtype.kind == "i" and scores.tolist() == []
