"""A committee folder is validated as a whole before anything is built on it or uses it
(issue 13): an empty member list, a scaler entry that is not a scaler, an unknown format
version, feature names inconsistent with a member, invalid temperatures, unknown member kinds
are each one MERError naming the file and the field; create_user copies nothing."""
import hashlib
import json
import shutil

import pytest

from test_loop_support import build_committee
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError


@pytest.fixture(scope="module")
def committee_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validation") / "committee"
    build_committee(folder)
    return folder


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_edit(edit):
    def apply(folder):
        path = folder / "committee.json"
        manifest = json.loads(path.read_text())
        edit(manifest, folder)
        path.write_text(json.dumps(manifest))
    return apply


def _member_meta_edit(key, value):
    """Change a member's metadata and re-sign it, as a consistent but wrong folder would be."""
    def apply(folder):
        manifest = json.loads((folder / "committee.json").read_text())
        meta_path = folder / "gnb_0.json"
        meta = json.loads(meta_path.read_text())
        meta[key] = value
        meta_path.write_text(json.dumps(meta))
        manifest["checksums"]["gnb_0.json"] = _sha(meta_path)
        (folder / "committee.json").write_text(json.dumps(manifest))
    return apply


def _set(key, value):
    return _manifest_edit(lambda m, f: m.__setitem__(key, value))


def _first_member(key, value):
    return _manifest_edit(lambda m, f: m["members"][0].__setitem__(key, value))


def _drop_feature(m, folder):
    m["feature_names"] = m["feature_names"][:-1]


CASES = {
    "no members": (_set("members", []), "field 'members'"),
    "members not a list": (_set("members", {"a": 1}), "field 'members'"),
    "scaler is a member file": (_set("scaler", "gnb_0.skops"), "field 'scaler'"),
    "scaler is a path": (_set("scaler", "../scaler.npy"), "field 'scaler'"),
    "unknown format": (_set("format", 7), "field 'format'"),
    "no format": (_manifest_edit(lambda m, f: m.pop("format")), "field 'format'"),
    "feature names fewer than the members read": (_manifest_edit(_drop_feature), "feature"),
    "feature names repeated": (_manifest_edit(lambda m, f: m["feature_names"].__setitem__(1, m["feature_names"][0])),
                               "field 'feature_names'"),
    "unknown member kind": (_first_member("algorithm", "ridge"), "member algorithm"),
    "member kind mismatch": (_first_member("input_kind", "audio"), "field 'input_kind'"),
    "member without files": (_first_member("files", []), "field 'files'"),
    "member name twice": (_manifest_edit(lambda m, f: m["members"][1].__setitem__("name", m["members"][0]["name"])),
                          "appears twice"),
    "temperature zero": (_member_meta_edit("temperature", 0), "field 'temperature'"),
    "temperature text": (_member_meta_edit("temperature", "hot"), "field 'temperature'"),
    "temperature negative": (_member_meta_edit("temperature", -2.0), "field 'temperature'"),
    "n_features wrong": (_member_meta_edit("n_features", 12), "features"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_inconsistent_committee_folder_is_refused(committee_dir, tmp_path, case):
    edit, needle = CASES[case]
    folder = tmp_path / "c"
    shutil.copytree(committee_dir, folder)
    edit(folder)
    with pytest.raises(MERError, match=needle) as err:
        Committee.load(folder)
    assert "\n" not in str(err.value)
    assert str(folder) in str(err.value)


def test_create_user_refuses_an_empty_committee_and_copies_nothing(committee_dir, tmp_path):
    from trompa_mer import loop

    folder = tmp_path / "c"
    shutil.copytree(committee_dir, folder)
    _set("members", [])(folder)
    with pytest.raises(MERError, match="field 'members'"):
        loop.create_user("bob", "mc", tmp_path / "users", folder)
    assert not (tmp_path / "users" / "bob").exists()


def test_the_valid_committee_still_loads(committee_dir):
    assert len(Committee.load(committee_dir).members) > 0
