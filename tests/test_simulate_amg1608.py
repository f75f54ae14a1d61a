"""AMG1608 loader on generated .mat files of the corpus' structure."""
import numpy as np
import pytest
from scipy.io import savemat

from trompa_mer.datasets.amg1608 import load_amg1608
from trompa_mer.errors import MERError
from trompa_mer.simulate import load_annotation_table

NAN = np.nan


def labels():
    # songs x annotators x (valence, arousal); NaN = annotator did not rate the song
    out = np.full((4, 3, 2), NAN)
    out[0, 0] = (0.5, 0.7)    # Q1
    out[0, 2] = (-0.2, 0.3)   # Q2 (arousal +, valence -)
    out[1, 1] = (-0.4, -0.9)  # Q3
    out[2, 0] = (0.6, -0.1)   # Q4 (arousal -, valence +)
    out[2, 1] = (0.0, 0.0)    # zero counts as positive: Q1
    out[3, 2] = (-0.1, 0.0)   # Q2
    return out


def test_reads_song_label_valence_first(tmp_path):
    path = tmp_path / "amg.mat"
    savemat(path, {"song_label": labels()})
    table = load_amg1608(path)
    assert list(table.columns) == ["user", "song", "quadrant", "arousal", "valence"]
    got = {(r.user, r.song): r.quadrant for r in table.itertuples()}
    assert got == {("1", "1"): 0, ("3", "1"): 1, ("2", "2"): 2, ("1", "3"): 3, ("2", "3"): 0, ("3", "4"): 1}
    row = table[(table.user == "1") & (table.song == "3")].iloc[0]
    assert row.arousal == pytest.approx(-0.1) and row.valence == pytest.approx(0.6)
    assert load_annotation_table(path).equals(table)


def test_song_ids_from_a_mapping_file_or_the_mat(tmp_path):
    path = tmp_path / "amg.mat"
    savemat(path, {"song_label": labels()})
    ids = tmp_path / "ids.txt"
    ids.write_text("A10\nB20\nC30\nD40\n")
    assert set(load_amg1608(path, ids)["song"]) == {"a10", "b20", "c30", "d40"}
    ids.write_text("position,song_id\n2,b20\n1,a10\n4,d40\n3,c30\n")  # positions, any order
    table = load_amg1608(path, ids)
    assert set(table.loc[table.user == "2", "song"]) == {"b20", "c30"}
    savemat(path, {"song_label": labels(), "song_id": np.array(["w", "x", "y", "z"], dtype=object)})
    assert set(load_amg1608(path)["song"]) == {"w", "x", "y", "z"}


def test_bad_files_are_clear_errors(tmp_path):
    path = tmp_path / "amg.mat"
    savemat(path, {"other": np.zeros(3)})
    with pytest.raises(MERError, match="missing variable 'song_label'"):
        load_amg1608(path)
    savemat(path, {"song_label": np.zeros((4, 3))})
    with pytest.raises(MERError, match="songs x annotators x 2"):
        load_amg1608(path)
    savemat(path, {"song_label": labels()})
    ids = tmp_path / "ids.txt"
    ids.write_text("a\nb\n")
    with pytest.raises(MERError, match="one song id per song"):
        load_amg1608(path, ids)
    with pytest.raises(MERError, match="not found"):
        load_amg1608(tmp_path / "absent.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(MERError, match="mat"):
        load_amg1608(tmp_path / "junk.mat")
