import json
import warnings

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from trompa_mer import members as M
from trompa_mer.committee import Committee, MANIFEST
from trompa_mer.errors import MERError
from trompa_mer.features import FEATURE_NAMES


def _raw(n_songs=12, windows=6, seed=0):
    rng = np.random.default_rng(seed)
    song_y = np.arange(n_songs) % 4
    song_of_window = np.repeat(np.arange(n_songs), windows)
    y = song_y[song_of_window]
    X = rng.normal(loc=5.0, scale=3.0, size=(len(y), len(FEATURE_NAMES))).astype(np.float32)
    X[:, 1] += 6.0 * y
    return X, y, song_of_window


def _committee(X, y):
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    members = []
    for algorithm in ("gnb", "sgd", "xgb"):
        for k in range(2):
            kwargs = {"rounds": 5, "update_rounds": 2} if algorithm == "xgb" else {}
            member = M.make_member(algorithm, **kwargs).fit(Xs[k::2], y[k::2])
            members.append((f"{algorithm}_{k}", member))
    return Committee(members, scaler, FEATURE_NAMES, {"corpus": {"name": "synthetic"}})


@pytest.fixture
def saved(tmp_path):
    X, y, sow = _raw()
    committee = _committee(X, y)
    folder = tmp_path / "committee"
    committee.save(folder)
    return committee, folder, X, y, sow


def test_round_trip_gives_identical_probabilities(saved):
    committee, folder, X, _, sow = saved
    loaded = Committee.load(folder, feature_names=FEATURE_NAMES)
    assert loaded.names() == committee.names()
    assert loaded.algorithms() == ["gnb", "gnb", "sgd", "sgd", "xgb", "xgb"]
    np.testing.assert_array_equal(loaded.window_proba(X), committee.window_proba(X))
    np.testing.assert_array_equal(loaded.song_proba(X, sow), committee.song_proba(X, sow))
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["corpus"] == {"name": "synthetic"}
    assert manifest["feature_names"] == FEATURE_NAMES
    assert manifest["classes"] == ["Q1", "Q2", "Q3", "Q4"]
    assert set(manifest["checksums"]) == {p.name for p in folder.iterdir() if p.name != MANIFEST}
    assert "xgboost" in manifest["versions"]


def test_song_proba_is_mean_of_window_proba(saved):
    committee, _, X, _, sow = saved
    windows = committee.window_proba(X)
    songs = committee.song_proba(X, sow)
    assert songs.shape == (6, 12, 4)
    for s in (0, 5, 11):
        np.testing.assert_allclose(songs[:, s], windows[:, sow == s].mean(axis=1))
    np.testing.assert_allclose(songs.sum(axis=2), 1.0)


def test_song_proba_accepts_a_pool(saved, tmp_path):
    from trompa_mer.features import write_feature_csv
    from trompa_mer.pool import load_pool
    import pandas as pd

    committee, _, X, _, sow = saved
    feats = tmp_path / "feats"
    for s in range(3):
        table = pd.DataFrame(X[sow == s], columns=FEATURE_NAMES)
        table.insert(0, "frameTime", np.arange(len(table)) * 0.5)
        write_feature_csv(table, feats / f"s{s}.csv")
    pool = load_pool(feats, cache=False)
    # the CSV round trip keeps the float32 values exactly: the same probabilities, not roughly
    np.testing.assert_allclose(committee.song_proba(pool), committee.song_proba(X[sow < 3], sow[sow < 3]),
                               rtol=0, atol=1e-12)


def test_one_quadrant_update_through_the_committee(saved):
    committee, _, X, _, sow = saved
    before = committee.song_proba(X, sow)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        committee.update(X[:5], np.full(5, 2))
        p = committee.song_proba(X, sow)
    assert p.shape == (6, 12, 4) and np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    # the answered quadrant (Q3) gains on the song whose windows were answered, for every member
    assert np.all(p[:, 0, 2] > before[:, 0, 2])


@pytest.mark.parametrize("victim", ["xgb_1.ubj", "sgd_0.skops", "sgd_0.linear.npy", "gnb_1.json", "scaler.npy"])
def test_tampered_file_is_refused_naming_it(saved, victim):
    _, folder, _, _, _ = saved
    path = folder / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(MERError, match=f"{victim}: checksum does not match"):
        Committee.load(folder)


def test_missing_file_is_refused(saved):
    _, folder, _, _, _ = saved
    (folder / "gnb_0.skops").unlink()
    with pytest.raises(MERError, match="gnb_0.skops: listed in committee.json but missing"):
        Committee.load(folder)


def test_wrong_feature_layout_is_refused(saved):
    committee, folder, X, _, _ = saved
    names = list(FEATURE_NAMES)
    names[3], names[4] = names[4], names[3]
    with pytest.raises(MERError, match="feature column 3"):
        Committee.load(folder, feature_names=names)
    with pytest.raises(MERError, match="expected 260 feature columns"):
        Committee.load(folder, feature_names=names[:-1])
    with pytest.raises(MERError, match="expected 260 columns"):
        committee.window_proba(X[:, :259])
    import pandas as pd

    table = pd.DataFrame(X, columns=names)
    with pytest.raises(MERError, match="feature column 3"):
        committee.window_proba(table)
    np.testing.assert_array_equal(committee.window_proba(pd.DataFrame(X, columns=FEATURE_NAMES)),
                                  committee.window_proba(X))


def test_manifest_with_wrong_feature_names_is_refused(saved):
    _, folder, _, _, _ = saved
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["feature_names"] = manifest["feature_names"][:100]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(MERError, match="260 features"):
        Committee.load(folder)


def test_broken_manifest_is_refused(saved):
    _, folder, _, _, _ = saved
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(MERError, match="committee.json: not valid JSON"):
        Committee.load(folder)
    with pytest.raises(MERError, match="no committee folder"):
        Committee.load(folder.parent / "nowhere")


def test_save_replaces_the_folder_whole(saved):
    committee, folder, X, y, _ = saved
    (folder / "stray.txt").write_text("left over")
    smaller = Committee(committee.members[:2], committee.scaler, FEATURE_NAMES, committee.manifest)
    smaller.save(folder)
    assert not (folder / "stray.txt").exists()
    assert not (folder / "xgb_0.ubj").exists()
    assert Committee.load(folder).names() == ["gnb_0", "gnb_1"]
    assert not list(folder.parent.glob(".committee.*"))


class FakeAudioMember:
    """Stands in for the CNN: answers per song id from an 'audio source' mapping."""

    algorithm = "fake-audio"
    input_kind = "audio"
    target_kind = "quadrant"
    margin_cacheable = False

    def __init__(self):
        self.updates = []

    def predict_proba(self, X):
        return np.array([X.source[s] for s in X.song_ids], dtype=float)

    def update(self, X, y):
        self.updates.append((list(X.song_ids), list(y)))


def test_audio_members_are_joined_by_song_id(saved):
    committee, _, X, _, sow = saved
    audio = FakeAudioMember()
    mixed = Committee(committee.members[:2] + [("cnn_0", audio)], committee.scaler, FEATURE_NAMES)
    song_ids = [f"song{i}" for i in range(12)]
    source = {s: np.eye(4)[i % 4] for i, s in enumerate(song_ids)}
    p = mixed.song_proba(X, sow, song_ids=song_ids, audio=source)
    assert p.shape == (3, 12, 4)
    np.testing.assert_array_equal(p[2], np.eye(4)[np.arange(12) % 4])
    np.testing.assert_array_equal(p[:2], committee.song_proba(X, sow)[:2])
    with pytest.raises(MERError, match="audio source"):
        mixed.song_proba(X, sow)
    mixed.update(X[:6], [0], song_of_window=np.zeros(6, int), song_ids=["song0"], audio=source)
    assert audio.updates == [(["song0"], [0])]


def test_a_joined_committee_copies_part_by_part(saved, tmp_path):
    """A crowd user's committee is joined from two stored parts: its copy must stay joined (a
    plain copy would save all members in one folder with the first part's layout)."""
    from trompa_mer.committee import CROWD_LAYOUT

    committee, _, X, y, sow = saved
    crowd = Committee([("extra_0", committee.members[0][1].copy())], committee.scaler, FEATURE_NAMES,
                      layout=CROWD_LAYOUT)
    joined = Committee.join(committee, crowd)
    twin = joined.copy()
    assert [p.layout for p in twin.parts] == [p.layout for p in joined.parts]
    assert twin.names() == joined.names()
    assert all(a is not b for (_, a), (_, b) in zip(twin.members, joined.members))
    np.testing.assert_array_equal(twin.song_proba(X, sow), joined.song_proba(X, sow))
    twin.update(X[:5], np.full(5, 2))
    assert not np.allclose(twin.song_proba(X, sow), joined.song_proba(X, sow)), "the copy is independent"
