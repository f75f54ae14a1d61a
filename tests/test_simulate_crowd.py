"""The crowd-aware member (issue 7) and its place in the simulator."""
import numpy as np
import pandas as pd
import pytest

from trompa_mer import crowd, simulate
from trompa_mer.crowd import CrowdMember, crowd_features, leave_one_out_examples
from trompa_mer.errors import MERError
from trompa_mer.simulate import ExperimentConfig, FeatureTable, run_experiment


def test_crowd_features_exclude_listeners_and_handle_songs_without_others():
    ann = pd.DataFrame({"user": ["me", "a", "b", "me"], "song": ["s1", "s1", "s1", "s2"], "quadrant": [0, 1, 1, 3]})
    feats = crowd_features(ann, ["s1", "s2", "s3"], exclude_users=["me"])
    assert feats.shape == (3, crowd.N_CROWD)
    np.testing.assert_allclose(feats[0], [0, 1, 0, 0, np.log1p(2), 0])
    np.testing.assert_allclose(feats[1], [0, 0, 0, 0, 0, 1])  # only I annotated s2: no other listener
    np.testing.assert_allclose(feats[2], [0, 0, 0, 0, 0, 1])


def test_leave_one_out_examples_never_see_the_target_or_the_labeler():
    ann = pd.DataFrame({"user": ["me", "a", "b", "c"], "song": ["s1"] * 4, "quadrant": [3, 0, 0, 1]})
    songs, feats, labels, listeners = leave_one_out_examples(ann, exclude_user="me")
    assert "me" not in set(listeners) and len(labels) == 3
    by_listener = dict(zip(listeners, feats))
    np.testing.assert_allclose(by_listener["a"][:4], [0.5, 0.5, 0, 0])  # b and c, not a, not me
    np.testing.assert_allclose(by_listener["c"][:4], [1, 0, 0, 0])
    assert by_listener["a"][3] == 0  # my Q4 never appears


def test_member_update_with_one_quadrant_and_persistence(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 8))
    y = rng.integers(0, 4, 200)
    member = CrowdMember(prior_strength=1.0).fit(X, y)
    before = member.predict_proba(X[:5])
    member.update(X[:6], np.full(6, 2))
    after = member.predict_proba(X[:5])
    assert after.shape == (5, 4) and np.isfinite(after).all()
    np.testing.assert_allclose(after.sum(axis=1), 1.0)
    assert (after[:, 2] > before[:, 2]).all()  # moved towards the answered quadrant
    assert (after[:, [0, 1, 3]] > 0).all()  # the prior keeps every quadrant alive
    files = member.save(tmp_path / "crowd_0")
    loaded = CrowdMember.load(tmp_path / "crowd_0")
    assert len(files) == 2
    np.testing.assert_allclose(loaded.predict_proba(X[:5]), after)
    loaded.update(X[6:8], np.array([1, 1]))  # the answers so far travel with the member
    assert len(loaded.answers_y) == 8


def test_stronger_prior_moves_less():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5))
    y = rng.integers(0, 4, 300)
    weak, strong = CrowdMember(prior_strength=0.1).fit(X, y), CrowdMember(prior_strength=100.0).fit(X, y)
    for member in (weak, strong):
        member.update(X[:10], np.zeros(10, dtype=int))
    assert np.abs(weak.W - weak.W0).sum() > 5 * np.abs(strong.W - strong.W0).sum()


def leak_population():
    """Dense songs: 4 other listeners agree and so do I. Sparse songs: only I annotated them, at
    random. Leaking my labels into my crowd features would make the sparse songs perfect."""
    rng = np.random.default_rng(7)
    n_dense, n_sparse, n_filler = 90, 80, 40
    n = n_dense + n_sparse + n_filler
    ids = np.array([f"s{i:03d}" for i in range(n)])
    X = rng.normal(size=(n, 3)).astype(np.float32)  # audio carries nothing
    rows = []
    for i in range(n_dense):
        c = int(rng.integers(0, 4))
        rows += [("me", ids[i], c)] + [(f"o{k}", ids[i], c) for k in range(4)]
    for i in range(n_dense, n_dense + n_sparse):
        rows.append(("me", ids[i], int(rng.integers(0, 4))))
    for i in range(n_dense + n_sparse, n):
        c = int(rng.integers(0, 4))
        rows += [(f"o{k}", ids[i], c) for k in range(3)]
    features = FeatureTable(ids, X, np.arange(n + 1), ["f0", "f1", "f2"])
    return pd.DataFrame(rows, columns=["user", "song", "quadrant"]), features


def _crowd_f1(tmp_path, name, variant="plain"):
    annotations, features = leak_population()
    config = ExperimentConfig(min_annotations=100, modes=["rand"], queries=[10], iterations=[1], updates=["batch"],
                              repeats=2, algorithms=["gnb"], users=["me"], crowd_member=True, test_size=0.3,
                              crowd_variant=variant)
    run_experiment(annotations, features, config, tmp_path / name, progress=False, plots=False)
    table = simulate.read_results(tmp_path / name)
    start = table[(table["iteration"] == 0) & (table["mode"] == "rand")]
    assert {"crowd", "full", "committee", "gnb"} <= set(start["algorithm"])
    return start[start["algorithm"] == "crowd"]["f1_weighted"].mean(), table


@pytest.mark.parametrize("variant", ["plain", "smoothed", "similar"])
def test_target_labels_never_reach_their_own_crowd_features(tmp_path, variant, monkeypatch):
    used = []
    original = crowd.pretrain_crowd_members
    monkeypatch.setattr(crowd, "pretrain_crowd_members", lambda *a, **k: used.append(k) or original(*a, **k))
    f1, table = _crowd_f1(tmp_path, "clean", variant)
    assert used and all(k == crowd.variant_options(variant) for k in used)
    # dense songs right, sparse songs (no other listener) at chance: well below perfect
    assert 0.4 < f1 < 0.85
    assert table["f1_weighted"].notna().all()
    summary = pd.read_csv(tmp_path / "clean" / "summary.csv")
    assert "p_end_gt_crowd_t" in summary.columns


def test_crowd_leak_check_can_fail(tmp_path, monkeypatch):
    original = crowd.crowd_features
    monkeypatch.setattr(crowd, "crowd_features", lambda ann, songs, exclude_users=(): original(ann, songs))
    f1, _ = _crowd_f1(tmp_path, "leaky")
    assert f1 > 0.95


def test_smoothed_frequencies_shrink_sparse_songs_towards_the_base_rates():
    ann = pd.DataFrame({"user": ["a", "b", "c"] + [f"u{k}" for k in range(20)],
                        "song": ["s1", "s2", "s2"] + ["s3"] * 20, "quadrant": [1, 1, 1] + [0] * 20})
    feats = crowd_features(ann, ["s1", "s2", "s3", "s4"])
    base = np.array([0.4, 0.2, 0.2, 0.2])
    smooth = crowd.smoothed_freqs(feats, 2.0, base)
    np.testing.assert_allclose(smooth[0], (np.array([0, 1, 0, 0]) + 2 * base) / 3)  # one listener
    np.testing.assert_allclose(smooth[3], base)  # nobody: the base rates
    np.testing.assert_allclose(smooth.sum(axis=1), 1.0)
    assert smooth[2, 0] > 0.9  # a big crowd barely moves
    np.testing.assert_allclose(crowd.smoothed_freqs(feats, 0.0, base), feats[:, :4])  # 0 = off
    member = CrowdMember(smoothing=2.0, base_rates=base, interactions=True)
    X = np.hstack([feats, np.zeros((4, 2))])
    assert member.design(X).shape == (4, crowd.N_CROWD + 4 + 2)
    assert np.array_equal(CrowdMember().design(X), X)  # the defaults: the original member


def test_empirical_bayes_concentration_recovers_a_known_dirichlet():
    rng = np.random.default_rng(3)
    base = np.array([0.4, 0.15, 0.2, 0.25])
    for true_a in (1.0, 20.0):
        p = rng.dirichlet(true_a * base, size=3000)
        counts = np.vstack([rng.multinomial(int(n), q) for n, q in zip(rng.integers(2, 12, 3000), p)])
        estimate = crowd.dirichlet_concentration(counts, base)
        assert true_a / 2 < estimate < true_a * 2


def _population(seed=5, n_songs=60, n_listeners=12):
    rng = np.random.default_rng(seed)
    rows = [(f"u{k}", f"s{i:02d}", int(rng.integers(0, 4))) for i in range(n_songs) for k in range(n_listeners)
            if rng.random() < 0.6]
    ann = pd.DataFrame(rows, columns=["user", "song", "quadrant"])
    audio = {f"s{i:02d}": rng.normal(size=3) for i in range(n_songs)}
    return ann, audio


@pytest.mark.parametrize("weighted", [False, True])
def test_pretraining_never_reads_the_targets_labels(weighted):
    """Smoothing (base rates, empirical-Bayes concentration), C, prior strengths and the
    agreement-weighted examples are built without the target: changing every one of the
    target's labels changes nothing."""
    ann, audio = _population()
    other = ann.copy()
    mine = other["user"] == "u0"
    other.loc[mine, "quadrant"] = (other.loc[mine, "quadrant"] + 1) % 4
    kwargs = dict(smoothing="eb", interactions=True, block_prior=True, C_grid=[0.1, 1.0], cv_splits=2,
                  weighted_examples=weighted)
    first = crowd.pretrain_crowd_members(ann, audio, "u0", **kwargs)
    second = crowd.pretrain_crowd_members(other, audio, "u0", **kwargs)
    for a, b in zip(first, second):
        assert a.params() == b.params()
        np.testing.assert_array_equal(a.W0, b.W0)
    assert first[0].smoothing > 0
    changed = crowd.pretrain_crowd_members(other, audio, "u1", **kwargs)  # u1's world now holds u0's new labels
    assert any(not np.array_equal(a.W0, b.W0) for a, b in zip(first, changed))


def test_block_prior_moves_the_crowd_block_and_keeps_the_audio():
    rng = np.random.default_rng(4)
    X = np.hstack([rng.dirichlet(np.ones(4), 300), rng.uniform(0, 2, (300, 1)), np.zeros((300, 1)),
                   rng.normal(size=(300, 3))])
    y = rng.integers(0, 4, 300)
    member = CrowdMember(prior_strength=1e6, crowd_prior_strength=0.1).fit(X, y)
    member.update(X[:30], np.full(30, 3))
    crowd_move = np.abs(member.W - member.W0)[:crowd.N_CROWD].sum() + np.abs(member.b - member.b0).sum()
    audio_move = np.abs(member.W - member.W0)[crowd.N_CROWD:].sum()
    assert crowd_move > 100 * audio_move


def test_member_files_without_the_new_options_still_load(tmp_path):
    import json

    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 8))
    y = rng.integers(0, 4, 100)
    member = CrowdMember(prior_strength=3.0).fit(X, y)
    member.save(tmp_path / "old")
    meta_path = tmp_path / "old.json"
    meta = json.loads(meta_path.read_text())
    meta["params"] = {"C": 1.0, "prior_strength": 3.0}  # what the first version wrote
    meta_path.write_text(json.dumps(meta))
    loaded = CrowdMember.load(tmp_path / "old")
    assert loaded.smoothing == 0 and not loaded.interactions and loaded.crowd_prior_strength is None
    np.testing.assert_allclose(loaded.predict_proba(X[:5]), member.predict_proba(X[:5]))
    smoothed = CrowdMember(smoothing=1.5, base_rates=[0.4, 0.2, 0.2, 0.2], interactions=True,
                           crowd_prior_strength=1.0).fit(np.abs(X), y)
    smoothed.save(tmp_path / "new")
    again = CrowdMember.load(tmp_path / "new")
    assert again.params() == smoothed.params()
    np.testing.assert_allclose(again.predict_proba(np.abs(X[:5])), smoothed.predict_proba(np.abs(X[:5])))


def test_dev_set_bounds_and_unknown_variant_are_refused():
    annotations, features = leak_population()  # "me" 170 songs, o0..o2 130, o3 90
    assert simulate.eligible_users(annotations, features, 80) == ["me", "o0", "o1", "o2", "o3"]
    assert simulate.eligible_users(annotations, features, 100, 150) == ["o0", "o1", "o2"]
    assert simulate.eligible_users(annotations, features, 80, 129) == ["o3"]
    with pytest.raises(MERError, match="crowd variant"):
        ExperimentConfig(crowd_variant="fancy").validate()
    with pytest.raises(MERError, match="max-annotations"):
        ExperimentConfig(min_annotations=80, max_annotations=50).validate()


def _two_camps():
    """Listeners a0..a3 always answer like "me"; b0..b3 always answer (my quadrant + 1) % 4."""
    rng = np.random.default_rng(11)
    mine = rng.integers(0, 4, 30)
    rows = [("me", f"s{i:02d}", int(q)) for i, q in enumerate(mine)]
    for i, q in enumerate(mine):
        rows += [(f"a{k}", f"s{i:02d}", int(q)) for k in range(4)]
        rows += [(f"b{k}", f"s{i:02d}", int((q + 1) % 4)) for k in range(4)]
    rows += [(f"b{k}", "s30", 2) for k in range(4)] + [("a0", "s30", 1)]  # a song "me" did not annotate
    return pd.DataFrame(rows, columns=["user", "song", "quadrant"]), mine


def test_listener_votes_follow_the_listeners_who_agree_with_me():
    ann, mine = _two_camps()
    songs = sorted(set(ann["song"]))
    votes = crowd.ListenerVotes(ann, songs, "me")
    # no answers: exactly the plain crowd features, the target left out
    np.testing.assert_allclose(votes.crowd_block([], []), crowd_features(ann, songs, exclude_users=["me"]))
    block = votes.crowd_block(list(range(20)), mine[:20])
    for i in range(20, 30):  # unanswered: the agreeing camp dominates the 50/50 split
        assert block[i, :4].argmax() == mine[i] and block[i, mine[i]] > 0.9
    assert block[30, 1] > block[30, 2]  # one agreeing listener outweighs four who disagree
    np.testing.assert_allclose(block[:, 4:], crowd_features(ann, songs, exclude_users=["me"])[:, 4:])


def test_listener_votes_never_read_unanswered_or_own_labels():
    ann, mine = _two_camps()
    songs = sorted(set(ann["song"]))
    votes = crowd.ListenerVotes(ann, songs, "me")
    # an answered song's own row is weighted without its own answer: with one answer, it is plain
    one = votes.crowd_block([0], mine[:1])
    np.testing.assert_allclose(one[0], crowd_features(ann, songs[:1], exclude_users=["me"])[0])
    # my recorded labels of unanswered songs (the test songs) change nothing
    flipped = ann.copy()
    test = (flipped["user"] == "me") & flipped["song"].isin(songs[20:])
    flipped.loc[test, "quadrant"] = (flipped.loc[test, "quadrant"] + 2) % 4
    again = crowd.ListenerVotes(flipped, songs, "me")
    np.testing.assert_array_equal(votes.crowd_block(list(range(20)), mine[:20]),
                                  again.crowd_block(list(range(20)), mine[:20]))


def test_weighted_examples_leave_out_the_labeler_and_weight_by_agreement():
    ann, mine = _two_camps()
    songs, block, labels, listeners = crowd.weighted_leave_one_out_examples(
        ann, "me", np.random.default_rng(0), max_answers=20)
    assert "me" not in set(listeners)
    p_songs, p_block, _, p_listeners = crowd.leave_one_out_examples(ann, "me")
    plain = {(s, v): row for s, v, row in zip(p_songs, p_listeners, p_block)}
    for s, row, y, v in zip(songs, block, labels, listeners):
        np.testing.assert_allclose(row[4:], plain[(s, v)][4:])  # the count of the others, without v
        if v.startswith("a") and s != "s30":  # v's camp-mates agree with v: weighted towards v's own label
            assert row[y] >= plain[(s, v)][y] - 1e-12
