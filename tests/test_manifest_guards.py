"""Every guard of a saved committee's manifest (committee.json), one at a time.

Each test breaks exactly one thing and, where deleting the guard would otherwise let the load
go through (an unverified file, a file read from outside the folder), sets the trap so that it
would: the refusal is then the guard's doing, named in its own words.
"""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from trompa_mer.committee import MANIFEST, SCALER_FILE, Committee, content_digest
from trompa_mer.errors import MERError
from trompa_mer.features import FEATURE_NAMES
from test_committee import _committee, _raw


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory):
    X, y, _ = _raw()
    folder = tmp_path_factory.mktemp("guards") / "committee"
    _committee(X, y).save(folder)
    return folder, X


@pytest.fixture
def saved(saved_once, tmp_path):
    folder = tmp_path / "box" / "committee"
    shutil.copytree(saved_once[0], folder)
    return folder, saved_once[1]


def _manifest(folder):
    return json.loads((folder / MANIFEST).read_text())


def _write(folder, manifest):
    (folder / MANIFEST).write_text(json.dumps(manifest))


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(folder, *needles):
    before = _files(folder)
    with pytest.raises(MERError) as info:
        Committee.load(folder)
    message = str(info.value)
    for needle in needles:
        assert needle in message, (needle, message)
    assert _files(folder) == before, "a refused load changed the folder"
    return message


def test_the_intact_folder_loads(saved):
    folder, X = saved
    committee = Committee.load(folder)
    assert committee.names() == ["gnb_0", "gnb_1", "sgd_0", "sgd_1", "xgb_0", "xgb_1"]
    assert committee.window_proba(X[:3]).shape == (6, 3, 4)


def test_saved_checksums_are_the_files_sha256(saved_once, tmp_path):
    X, y, _ = _raw()
    committee = _committee(X, y)
    folder = committee.save(tmp_path / "fresh")  # saved here, not in a shared fixture
    manifest = _manifest(folder)
    # the committee in memory now carries what was written, and its digest
    assert committee.manifest == manifest
    assert committee.content_digest() == content_digest(manifest)
    assert Committee.load(folder).content_digest() == content_digest(manifest)
    files = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    assert sorted(manifest["checksums"]) == files
    for name, digest in manifest["checksums"].items():
        assert digest == _sha(folder / name), name
    assert manifest["scaler"] == SCALER_FILE and manifest["format"] == 1
    for entry in manifest["members"]:
        linear = [f"{entry['name']}.linear.npy"] if entry["algorithm"] == "sgd" else []
        assert entry["files"] == [f"{entry['name']}.{'ubj' if entry['algorithm'] == 'xgb' else 'skops'}",
                                  f"{entry['name']}.json", *linear]
        assert entry["input_kind"] == "features"


def test_member_file_without_checksum_entry_is_refused(saved):
    """The file is damaged too: without the guard it would load unverified."""
    folder, _ = saved
    manifest = _manifest(folder)
    del manifest["checksums"]["gnb_0.json"]
    _write(folder, manifest)
    meta = json.loads((folder / "gnb_0.json").read_text())
    meta["temperature"] = 50.0
    (folder / "gnb_0.json").write_text(json.dumps(meta))
    _refused(folder, str(folder / MANIFEST), "field 'checksums' has no entry for gnb_0.json")


def test_scaler_without_checksum_entry_is_refused(saved):
    folder, _ = saved
    manifest = _manifest(folder)
    del manifest["checksums"][SCALER_FILE]
    _write(folder, manifest)
    _refused(folder, f"field 'checksums' has no entry for {SCALER_FILE}")


def test_listed_member_file_that_is_not_there_is_refused(saved):
    folder, _ = saved
    manifest = _manifest(folder)
    manifest["members"][2]["files"].append("sgd_0.extra")
    _write(folder, manifest)
    _refused(folder, "no entry for sgd_0.extra")
    manifest["checksums"]["sgd_0.extra"] = "0" * 64
    _write(folder, manifest)
    _refused(folder, str(folder / "sgd_0.extra"), "listed in committee.json but missing")


@pytest.mark.parametrize("name", ["../outside.skops", "sub/outside.skops"])
def test_checksum_entry_with_a_folder_is_refused(saved, name):
    """The file exists where the name points and its checksum matches: only the guard refuses."""
    folder, _ = saved
    target = folder / name
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"outside the committee folder")
    manifest = _manifest(folder)
    manifest["checksums"][name] = _sha(target)
    _write(folder, manifest)
    _refused(folder, f"file name {name!r} must not contain a folder")


def test_scaler_outside_the_folder_is_refused(saved):
    folder, _ = saved
    shutil.copy2(folder / SCALER_FILE, folder.parent / SCALER_FILE)
    manifest = _manifest(folder)
    manifest["scaler"] = f"../{SCALER_FILE}"
    manifest["checksums"][f"../{SCALER_FILE}"] = manifest["checksums"].pop(SCALER_FILE)
    _write(folder, manifest)
    _refused(folder, "field 'scaler'", f"../{SCALER_FILE}")


@pytest.mark.parametrize("bad", ["../gnb_0", "sub/gnb_0", "", None])
def test_member_name_with_a_folder_or_empty_is_refused(saved, bad):
    """Copies of the member sit where the bad name points, so only the name guard refuses."""
    folder, _ = saved
    for place in (folder.parent, folder / "sub"):
        place.mkdir(exist_ok=True)
        for suffix in (".skops", ".json"):
            shutil.copy2(folder / f"gnb_0{suffix}", place / f"gnb_0{suffix}")
    manifest = _manifest(folder)
    if bad is None:
        del manifest["members"][0]["name"]
    else:
        manifest["members"][0]["name"] = bad
    _write(folder, manifest)
    _refused(folder, str(folder / MANIFEST), f"member name {bad!r} is not a plain name")


@pytest.mark.parametrize("field", ["feature_names", "members", "checksums", "scaler"])
def test_missing_field_is_refused(saved, field):
    folder, _ = saved
    manifest = _manifest(folder)
    del manifest[field]
    _write(folder, manifest)
    _refused(folder, str(folder / MANIFEST), f"field {field!r} missing")


def test_other_classes_are_refused(saved):
    folder, _ = saved
    manifest = _manifest(folder)
    manifest["classes"] = ["Q2", "Q1", "Q3", "Q4"]
    _write(folder, manifest)
    _refused(folder, "field 'classes' is ['Q2', 'Q1', 'Q3', 'Q4'], expected ['Q1', 'Q2', 'Q3', 'Q4']")
    del manifest["classes"]  # absent: the default order, accepted
    _write(folder, manifest)
    assert Committee.load(folder).names()[0] == "gnb_0"


def test_member_width_other_than_the_layout_is_refused(saved):
    folder, _ = saved
    manifest = _manifest(folder)
    manifest["feature_names"] = FEATURE_NAMES[:-1]
    _write(folder, manifest)
    # the scaler's width is checked first (the members' widths after it, same layout rule)
    _refused(folder, "standardizes 260 features, the committee has 259 feature names")


def test_not_a_folder_and_no_manifest(saved, tmp_path):
    folder, _ = saved
    with pytest.raises(MERError, match="no committee folder here"):
        Committee.load(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MERError, match="no committee folder here"):
        Committee.load(tmp_path / "file")
    (folder / MANIFEST).unlink()
    with pytest.raises(MERError, match=r"committee.json: missing \(not a committee folder\)"):
        Committee.load(folder)


def test_every_checksummed_file_is_verified(saved):
    """Flip one byte of each file in turn (members, metadata, scaler): each is refused by name."""
    folder, _ = saved
    for name in sorted(_manifest(folder)["checksums"]):
        path = folder / name
        original = path.read_bytes()
        data = bytearray(original)
        data[-1] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(MERError) as info:
            Committee.load(folder)
        assert str(info.value) == (f"{path}: checksum does not match committee.json (the file was changed or "
                                   "damaged after the committee was saved)")
        path.write_bytes(original)
    Committee.load(folder)


def test_duplicate_member_names_and_scaler_width_are_refused(saved):
    folder, _ = saved
    committee = Committee.load(folder)
    with pytest.raises(MERError, match="member names must be unique"):
        Committee([committee.members[0], committee.members[0]], committee.scaler, FEATURE_NAMES)
    with pytest.raises(MERError, match="scaler expects 260 features but 259 feature names"):
        Committee(committee.members, committee.scaler, FEATURE_NAMES[:-1])


@pytest.mark.parametrize("name", ["../card.md", "sub/card.md", MANIFEST, SCALER_FILE, "gnb_0.json"])
def test_extra_files_must_be_free_plain_names(saved, tmp_path, name):
    folder, _ = saved
    committee = Committee.load(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(MERError, match="is not a free plain name"):
        committee.save(folder, extra_files={name: "text"})
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (folder.parent / "card.md").exists()
    assert not list(folder.parent.glob(".committee.*"))
    committee.save(folder, extra_files={"README.md": "card"})
    assert (folder / "README.md").read_text() == "card" and "README.md" not in _manifest(folder)["checksums"]


def test_save_keeps_extra_member_entry_fields_and_provenance(saved, tmp_path):
    folder, X = saved
    manifest = _manifest(folder)
    manifest["members"][1]["f1_macro"] = 0.42
    manifest["corpus"] = {"name": "kept"}
    _write(folder, manifest)
    committee = Committee.load(folder)
    committee.save(tmp_path / "again")
    again = _manifest(tmp_path / "again")
    assert again["members"][1]["f1_macro"] == 0.42 and again["members"][1]["files"] == ["gnb_1.skops", "gnb_1.json"]
    assert "f1_macro" not in again["members"][0]
    np.testing.assert_array_equal(Committee.load(tmp_path / "again").window_proba(X), committee.window_proba(X))
    assert again["corpus"] == {"name": "kept"}


def test_save_keeps_earlier_library_versions_and_updates_its_own(saved, tmp_path):
    import numpy

    folder, _ = saved
    manifest = _manifest(folder)
    manifest["versions"] = {**manifest["versions"], "torch": "2.0-at-pretraining", "numpy": "0.0"}
    _write(folder, manifest)
    Committee.load(folder).save(tmp_path / "again")
    versions = _manifest(tmp_path / "again")["versions"]
    assert versions["torch"] == "2.0-at-pretraining" and versions["numpy"] == numpy.__version__


def test_content_digest_of_a_sparse_manifest():
    """content_digest reads every field with a default: a manifest without members hashes."""
    assert len(content_digest({})) == 64 and content_digest({}) == content_digest({"members": []})


def test_feature_layout_refusal_names_the_manifest(saved):
    folder, _ = saved
    with pytest.raises(MERError) as info:
        Committee.load(folder, feature_names=list(reversed(FEATURE_NAMES)))
    assert str(info.value).startswith(f"{folder / MANIFEST}: feature column 0 is ")


def test_member_entry_without_a_files_list_is_refused(saved):
    """A member's files list is what ties its files to their checksums: without it a member
    file could escape verification, so the whole-folder validation refuses it."""
    folder, X = saved
    manifest = _manifest(folder)
    del manifest["members"][0]["files"]
    _write(folder, manifest)
    _refused(folder, "member 'gnb_0'", "field 'files'")


def test_save_creates_missing_parent_folders(saved, tmp_path):
    folder, _ = saved
    target = tmp_path / "a" / "b" / "committee"
    Committee.load(folder).save(target)
    assert Committee.load(target).names() == Committee.load(folder).names()


def test_failed_save_cleans_a_temp_folder_named_for_tidy(saved, tmp_path, monkeypatch):
    """The new folder is assembled beside the target as .<name>.*.tmp (what users.tidy and
    atomic recovery recognise); a failure removes it and leaves the old folder."""
    from trompa_mer import atomic, checksummed

    folder, _ = saved
    before = _files(folder)
    committee = Committee.load(folder)  # (loading removes its private copy of the files)
    removed = []
    real_rmtree = shutil.rmtree
    monkeypatch.setattr(checksummed.shutil, "rmtree",
                        lambda path, **kwargs: removed.append(path) or real_rmtree(path, **kwargs))
    monkeypatch.setattr(atomic, "replace_dir", lambda *a: (_ for _ in ()).throw(OSError(28, "disk full (simulated)")))
    with pytest.raises(OSError):
        committee.save(folder)
    assert len(removed) == 1
    tmp = removed[0]
    assert tmp.parent == folder.parent and tmp.name.startswith(".committee.") and tmp.name.endswith(".tmp")
    assert not tmp.exists() and _files(folder) == before


class FakeAudioMember:
    """An audio member without the torch weight: no n_features, files written by save()."""

    algorithm = "fake-audio"
    input_kind = "audio"
    target_kind = "quadrant"

    def save(self, path):
        (path.parent / f"{path.name}.fake").write_text("weights")
        return [f"{path.name}.fake"]

    @classmethod
    def load(cls, path):
        assert (path.parent / f"{path.name}.fake").read_text() == "weights"
        return cls()


def test_audio_members_are_saved_and_loaded_without_a_feature_width(saved, tmp_path, monkeypatch):
    from trompa_mer import committee as committee_module

    folder, _ = saved
    base = Committee.load(folder)
    mixed = Committee(base.members[:2] + [("cnn_0", FakeAudioMember())], base.scaler, FEATURE_NAMES)
    mixed.save(tmp_path / "mixed")
    entries = {m["name"]: m for m in _manifest(tmp_path / "mixed")["members"]}
    assert entries["cnn_0"]["input_kind"] == "audio" and entries["cnn_0"]["algorithm"] == "fake-audio"
    assert entries["gnb_0"]["input_kind"] == "features"
    real = committee_module.member_class
    monkeypatch.setattr(committee_module, "member_class",
                        lambda algorithm: FakeAudioMember if algorithm == "fake-audio" else real(algorithm))
    loaded = Committee.load(tmp_path / "mixed")
    assert loaded.names() == ["gnb_0", "gnb_1", "cnn_0"] and isinstance(loaded.members[2][1], FakeAudioMember)
    assert loaded.content_digest() is None  # audio may change: never cached


@pytest.mark.parametrize("field, value, needle", [
    ("checksums", ["scaler.npy"], "checksums"),   # a list, not {file: sha256}
    ("checksums", {"scaler.npy": 5}, "checksums"),  # a digest that is not a string
    ("members", ["gnb_0"], "member"),               # an entry that is not an object
])
def test_malformed_manifest_fields_are_refused_in_one_line(saved, field, value, needle):
    """Found by mutation testing after the restructuring: these shapes were refused, but no
    test held it (a wrong `and` let a list of checksums through to a traceback)."""
    folder, _ = saved
    manifest = _manifest(folder)
    manifest[field] = value
    _write(folder, manifest)
    message = _refused(folder, needle)
    assert "\n" not in message
