import json

import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from trompa_mer import consensus
from trompa_mer.datasets.annotations import load_annotation_csv, load_annotations
from trompa_mer.errors import MERError


def _reference_consensus(export: dict, user: str) -> dict:
    """The original definition written out plainly: for each song, counts of each quadrant
    among annotations whose user is not `user`, divided by their number."""
    counts = {}
    for item in export["annotations"]:
        uid = str(item.get("userid", item.get("userId")))
        if uid == user:
            continue
        a, v = int(item["arousalValue"]), int(item["valenceValue"])
        quad = {(1, 1): 0, (1, -1): 1, (-1, -1): 2, (-1, 1): 3}[(a, v)]
        counts.setdefault(item["externalID"].lower(), [0, 0, 0, 0])[quad] += 1
    return {song: [c / sum(cs) for c in cs] for song, cs in counts.items() for cs in [cs]}


def test_human_consensus_matches_original_definition_on_trompa():
    path = shared_path("trompa", "annotations.json")
    export = json.loads(path.read_text())
    table = load_annotations(path)
    assert len(table) == 3444 and table["user"].nunique() == 141 and table["song"].nunique() == 311
    users = table["user"].value_counts()
    for user in [users.index[0], users.index[len(users) // 2], users.index[-1]]:
        ours = consensus.human_consensus(table, exclude_user=user)
        expected = _reference_consensus(export, user)
        assert set(ours.index) == set(expected)
        for song, freqs in expected.items():
            np.testing.assert_allclose(ours.loc[song, ["Q1", "Q2", "Q3", "Q4"]].to_numpy(float), freqs)
        # the user's own annotations never count
        own = table[table["user"] == user]
        others = table[table["user"] != user]
        for song in own["song"]:
            n_others = int((others["song"] == song).sum())
            if n_others:
                assert ours.loc[song, "n_listeners"] == n_others
            else:
                assert song not in ours.index


def test_userid_and_userId_spellings(tmp_path):
    items = [{"externalID": "ABC", "userid": "1", "arousalValue": "1", "valenceValue": "-1"},
             {"externalID": "abc", "userId": "2", "arousalValue": "-1", "valenceValue": "-1"}]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"annotations": items, "users": [], "moods": []}))
    table = load_annotations(path)
    assert table["user"].tolist() == ["1", "2"]
    assert table["song"].tolist() == ["abc", "abc"]
    assert table["quadrant"].tolist() == [1, 2]
    freqs = consensus.human_consensus(table, exclude_user="1")
    assert freqs.loc["abc", ["Q1", "Q2", "Q3", "Q4"]].tolist() == [0, 0, 1, 0]


def test_annotation_csv_quadrant_and_av(tmp_path):
    p1 = tmp_path / "q.csv"
    p1.write_text("user,song,quadrant\nu1,S1,Q2\nu2,s1,q4\nu1,s2,3\n")
    t1 = load_annotation_csv(p1)
    assert t1["quadrant"].tolist() == [1, 3, 2] and t1["song"].tolist() == ["s1", "s1", "s2"]
    p2 = tmp_path / "av.csv"
    p2.write_text("user_id,song_id,arousal,valence\nu1,s1,0,0\nu1,s2,-0.5,0.2\n")
    assert load_annotation_csv(p2)["quadrant"].tolist() == [0, 3]  # 0 counts as positive


@pytest.mark.parametrize("text,needle", [
    ("user,song\nu1,s1\n", "quadrant"),
    ("song,quadrant\ns1,Q1\n", "user column"),
    ("user,song,quadrant\nu1,s1,Q5\n", "Q5"),
])
def test_annotation_csv_refusals(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(MERError, match=needle):
        load_annotation_csv(path)


def test_trompa_export_refusals(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MERError, match="not valid JSON"):
        load_annotations(bad)
    bad.write_text(json.dumps({"annotations": [{"externalID": "a", "arousalValue": "1", "valenceValue": "1"}]}))
    with pytest.raises(MERError, match="userid"):
        load_annotations(bad)


def test_entropy_and_selection():
    p = np.array([[1, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0]])
    ent = consensus.entropy(p)
    assert ent[0] == 0 and np.isclose(ent[1], np.log(4)) and np.isclose(ent[2], np.log(2))
    songs = ["a", "b", "c"]
    assert consensus.select_queries(songs, ent, 2) == ["b", "c"]
    assert consensus.select_queries(songs, ent, 2, asked={"b"}) == ["c", "a"]
    # balanced: at most ceil(q/4) per predicted quadrant before filling up
    songs = [f"s{i}" for i in range(8)]
    scores = np.arange(8, 0, -1.0)
    predicted = [0, 0, 0, 0, 1, 1, 2, 3]
    assert consensus.select_queries(songs, scores, 4, balanced=True, predicted=predicted) == ["s0", "s4", "s6", "s7"]


def test_mode_scores_mix_and_hc_without_listeners():
    freqs = pd.DataFrame({"Q1": [0.5, 1.0], "Q2": [0.5, 0], "Q3": [0, 0], "Q4": [0, 0], "n_listeners": [2, 1]},
                         index=pd.Index(["a", "b"], name="song"))
    machine = np.array([[0.25] * 4, [0.9, 0.1, 0, 0], [0.4, 0.6, 0, 0]])
    hc = consensus.mode_scores("hc", ["a", "b", "c"], human_freqs=freqs)
    assert np.isnan(hc[2])
    assert consensus.rank_by_score(["a", "b", "c"], hc)[-1] == "c"  # no other listeners: last
    mix = consensus.mode_scores("mix", ["a", "b", "c"], machine_proba=machine, human_freqs=freqs)
    np.testing.assert_allclose(mix, np.fmax(consensus.entropy(machine), np.nan_to_num(hc, nan=-1)))
    with pytest.raises(MERError):
        consensus.mode_scores("bogus", ["a"])
