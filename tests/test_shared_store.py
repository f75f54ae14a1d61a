"""Issue 13 part 4: the pre-trained committee stored once per users folder (.shared/<sha256>),
each user folder holding only what is theirs; every load verifies every file, shared or not."""
import hashlib
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.users import UserStore

# The shipped feature-only committee (sgd + xgb): these tests score random windows, which the
# default committee's musicnn members (they read audio) cannot; the store is the same for both.
PRETRAINED = Path(__file__).resolve().parents[1] / "models" / "pretrained-features"


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _windows(seed=0, songs=10, per_song=30):
    rng = np.random.default_rng(seed)
    reference = Committee.load(PRETRAINED)
    X = rng.normal(size=(songs * per_song, len(reference.feature_names))).astype(np.float32)
    X = X * reference.scaler.scale_.astype(np.float32) + reference.scaler.mean_.astype(np.float32)
    return X, np.repeat(np.arange(songs), per_song), np.arange(songs) % 4


@pytest.fixture
def store(tmp_path):
    if not (PRETRAINED / "committee.json").is_file():
        pytest.skip("models/pretrained-features not present")
    store = UserStore(tmp_path / "users")
    store.create("bob", PRETRAINED, "mc")
    return store


def _retrain(store, user, state, X, sow, y, base=True):
    committee = store.load_committee(user, state, base=base)
    committee.update(X, y, song_of_window=sow)
    fields = store.save_committee(user, committee, state["iteration"] + 1)
    new = dict(state, iteration=state["iteration"] + 1, **fields)
    store.write_state(user, new)
    store.tidy(user, new)
    return committee, new


def test_a_new_user_refers_to_the_shared_files_and_predicts_the_same(store, tmp_path):
    user = tmp_path / "users" / "bob"
    shared = tmp_path / "users" / ".shared"
    assert _size(user) < 0.5e6 < _size(PRETRAINED)
    for folder in ("committee-0000", "base-committee"):
        manifest = json.loads((user / folder / "committee.json").read_text())
        assert manifest["store"] == "../../.shared"
        assert set(manifest["stored"]) == set(manifest["checksums"])
        assert sorted(p.name for p in (user / folder).iterdir()) == ["README.md", "committee.json"]
    for blob in shared.iterdir():  # content-addressed: the name is the content's sha256
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    state = store.read_state("bob")
    X, sow, _ = _windows()
    expected = Committee.load(PRETRAINED).song_proba(X, sow)
    committee = store.load_committee("bob", state)
    assert np.array_equal(committee.song_proba(X, sow), expected)
    assert committee.content_digest() == Committee.load(PRETRAINED).content_digest()  # caches still hit
    assert np.array_equal(Committee.load(user / "committee-0000").song_proba(X, sow), expected)
    store.create("carol", PRETRAINED, "mc")  # a second user adds nothing to the store
    assert len(list(shared.iterdir())) == len(json.loads((PRETRAINED / "committee.json").read_text())["checksums"])


def test_retrained_xgboost_keeps_only_its_new_rounds_and_predicts_bit_identically(store, tmp_path):
    X, sow, y = _windows()
    state = store.read_state("bob")
    blobs_before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "users" / ".shared").iterdir()}
    for _ in range(3):  # cumulative rounds, then batch ones from a committee that is itself spliced
        committee, state = _retrain(store, "bob", state, X, sow, y)
    for _ in range(2):
        committee, state = _retrain(store, "bob", state, X, sow, y, base=False)
    folder = tmp_path / "users" / "bob" / state["committee"]
    manifest = json.loads((folder / "committee.json").read_text())
    xgb_files = [f for f in manifest["checksums"] if f.endswith(".ubj")]
    assert xgb_files and all("part" in manifest["stored"][f] for f in xgb_files)
    assert all(not (folder / f).exists() and (folder / (f + ".part")).is_file() for f in xgb_files)
    # the same committee saved whole (as before the store) predicts the same bits
    whole = tmp_path / "whole"
    committee.save(whole)
    X2, sow2, _ = _windows(seed=1)
    loaded = store.load_committee("bob", state)
    assert np.array_equal(loaded.song_proba(X2, sow2), Committee.load(whole).song_proba(X2, sow2))
    assert _size(tmp_path / "users" / "bob") < 2e6
    # a user's command never adds, changes or deletes a blob
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "users" / ".shared").iterdir()} == blobs_before


def _first_stored(manifest, with_part=False):
    return next(f for f, spec in manifest["stored"].items() if ("part" in spec) == with_part)


def test_a_changed_or_missing_shared_file_is_refused_naming_it(store, tmp_path):
    state = store.read_state("bob")
    folder = tmp_path / "users" / "bob" / "committee-0000"
    manifest = json.loads((folder / "committee.json").read_text())
    name = _first_stored(manifest)
    blob = tmp_path / "users" / ".shared" / manifest["stored"][name]["blob"]
    data = blob.read_bytes()
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(MERError) as err:
        store.load_committee("bob", state)
    assert str(blob) in str(err.value) and "changed or damaged" in str(err.value)
    assert "\n" not in str(err.value)
    blob.unlink()
    with pytest.raises(MERError, match=r"\.shared/[0-9a-f]{64}: shared file of .*committee-0000/.* is missing"):
        Committee.load(folder)
    blob.write_bytes(data)
    Committee.load(folder)


def test_a_changed_part_or_a_doctored_reference_is_refused(store, tmp_path):
    X, sow, y = _windows()
    _, state = _retrain(store, "bob", store.read_state("bob"), X, sow, y)
    folder = tmp_path / "users" / "bob" / state["committee"]
    manifest_path = folder / "committee.json"
    manifest = json.loads(manifest_path.read_text())
    name = _first_stored(manifest, with_part=True)
    part = folder / manifest["stored"][name]["part"]
    data = part.read_bytes()
    assert manifest["stored"][name]["compression"] == "zlib"
    part.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])  # zlib's own check fails
    with pytest.raises(MERError, match=rf"{name}.part: not a readable compressed part"):
        Committee.load(folder)
    plain = zlib.decompress(data)  # a readable part with one byte changed: the checksum fails
    part.write_bytes(zlib.compress(plain[:100] + bytes([plain[100] ^ 1]) + plain[101:]))
    with pytest.raises(MERError, match=rf"{name}: checksum does not match committee.json"):
        Committee.load(folder)
    part.write_bytes(data)
    original = manifest_path.read_text()
    unknown = {**manifest["stored"][name], "compression": "lzma"}
    manifest_path.write_text(json.dumps({**manifest, "stored": {**manifest["stored"], name: unknown}}))
    with pytest.raises(MERError, match="compression 'lzma'"):
        Committee.load(folder)
    for field, value in [("store", "/etc"), ("store", "../x/../.shared"), ("store", ".shared")]:
        manifest_path.write_text(json.dumps({**manifest, field: value}))
        with pytest.raises(MERError, match="field 'store'"):
            Committee.load(folder)
    # a reference to another blob of the store (a valid file, but not this one's content)
    other = next(spec["blob"] for f, spec in manifest["stored"].items() if f != name)
    manifest_path.write_text(json.dumps({**manifest, "stored": {**manifest["stored"], name: {"blob": other}}}))
    with pytest.raises(MERError, match=rf"{name}: checksum does not match"):
        Committee.load(folder)
    manifest_path.write_text(original)
    Committee.load(folder)


def test_user_folders_of_the_full_copy_layout_keep_working(store, tmp_path):
    """A folder as create wrote it before the store (two full copies): read as it is; its next
    rounds are saved (whole, no blob of it being in a store) and load; nothing is migrated."""
    users = tmp_path / "old_users"
    old = UserStore(users)
    old.create("dora", PRETRAINED, "mc")
    for name in ("committee-0000", "base-committee"):  # what the code before the store wrote
        shutil.rmtree(users / "dora" / name)
        shutil.copytree(PRETRAINED, users / "dora" / name)
    shutil.rmtree(users / ".shared")
    X, sow, y = _windows()
    state = old.read_state("dora")
    assert np.array_equal(old.load_committee("dora", state).song_proba(X, sow),
                          Committee.load(PRETRAINED).song_proba(X, sow))
    committee, state = _retrain(old, "dora", state, X, sow, y)
    loaded = old.load_committee("dora", state)
    assert np.array_equal(loaded.song_proba(X, sow), committee.song_proba(X, sow))
    assert "stored" not in json.loads((users / "dora" / "base-committee" / "committee.json").read_text())


def test_deleting_a_user_folder_forgets_the_user_and_spares_the_others(store, tmp_path):
    store.create("carol", PRETRAINED, "mc")
    shutil.rmtree(tmp_path / "users" / "bob")
    assert not store.exists("bob")
    X, sow, _ = _windows()
    assert np.array_equal(store.load_committee("carol", store.read_state("carol")).song_proba(X, sow),
                          Committee.load(PRETRAINED).song_proba(X, sow))
    store.create("bob", PRETRAINED, "mc")  # the id is free again


def test_a_user_of_the_default_committee_is_stored_the_same_way(tmp_path):
    """The default committee (xgb + musicnn) goes into the store like the feature-only one: the
    user folder holds manifests only, and the user's committee is the shipped one."""
    default = PRETRAINED.parent / "pretrained"
    store = UserStore(tmp_path / "users")
    store.create("erin", default, "mc")
    user = tmp_path / "users" / "erin"
    assert _size(user) < 0.5e6 < _size(default)
    committee = store.load_committee("erin", store.read_state("erin"))
    assert committee.names() == Committee.load(default).names()
    assert [m["checksums"] for m in (json.loads((user / "committee-0000" / "committee.json").read_text()),)] == \
        [json.loads((default / "committee.json").read_text())["checksums"]]
