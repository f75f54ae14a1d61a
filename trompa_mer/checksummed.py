"""A folder saved as one unit: its files plus a JSON manifest holding the sha256 of each.

Committees (committee.json) and a user's crowd-aware members (crowd.json) are stored this way.
Writing: the files go into a new temporary folder beside the destination, the manifest is
written last with every file's checksum, and the folder is swapped into place
(atomic.replace_dir), so a reader never sees half of one. Reading: the manifest is parsed, its
required fields checked, and every listed file verified against its checksum before anything
in the folder is deserialized; each refusal is a MERError naming the file and what was wrong.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from . import atomic
from .errors import MERError
from .quadrants import QUADRANTS


def sha256_file(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_new_folder(directory, write) -> Path:
    """Call `write(tmp)` on a new temporary folder beside `directory`, then swap it into place.

    On any failure the temporary folder is removed and `directory` is left as it was."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        write(tmp)
        atomic.replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def write_manifest(folder, manifest_name: str, manifest: dict, files) -> dict:
    """Write `manifest` plus the checksums of `files` (already in `folder`) as its manifest."""
    folder = Path(folder)
    manifest = dict(manifest)
    manifest["checksums"] = {f: sha256_file(folder / f) for f in files}
    atomic.write_json(folder / manifest_name, manifest)
    return manifest


def read_manifest(directory, manifest_name: str, required, what: str, missing_hint: str,
                  classes_required: bool = True, check=None) -> dict:
    """The verified manifest of a checksummed folder.

    Refused: a missing or unparsable manifest, a required field missing, classes other than
    Q1..Q4, a listed file (the scaler, a member's files) without a checksum, a checksum entry
    naming a path instead of a plain file name, a listed file that is missing, or a file whose
    sha256 differs. `what` names the folder's content in messages ("committee"). `check`
    (manifest, manifest path), called before any file is read, refuses a malformed manifest.
    """
    directory = Path(directory)
    atomic.recover_dir(directory)
    manifest_path = directory / manifest_name
    if not manifest_path.is_file():
        raise MERError(f"{manifest_path}: missing ({missing_hint})")
    manifest = atomic.read_json_object(manifest_path)
    for field in required:
        if field not in manifest:
            raise MERError(f"{manifest_path}: field {field!r} missing")
    classes = manifest.get("classes") if classes_required else manifest.get("classes", list(QUADRANTS))
    if classes != list(QUADRANTS):
        raise MERError(f"{manifest_path}: field 'classes' is {manifest.get('classes')}, "
                       f"expected {list(QUADRANTS)}")
    if check is not None:
        check(manifest, manifest_path)
    checksums = manifest["checksums"]
    if not isinstance(checksums, dict) or not all(isinstance(v, str) for v in checksums.values()):
        raise MERError(f"{manifest_path}: field 'checksums': expected an object {{file name: sha256}}")
    listed = {manifest["scaler"]} | {f for m in manifest["members"] for f in m.get("files", [])}
    unlisted = sorted(listed - set(checksums))
    if unlisted:
        raise MERError(f"{manifest_path}: field 'checksums' has no entry for {unlisted[0]}")
    for name, digest in checksums.items():
        if Path(name).name != name:
            raise MERError(f"{manifest_path}: file name {name!r} must not contain a folder")
        path = directory / name
        if not path.is_file():
            raise MERError(f"{path}: listed in {manifest_name} but missing")
        if sha256_file(path) != digest:
            raise MERError(f"{path}: checksum does not match {manifest_name} "
                           f"(the file was changed or damaged after the {what} was saved)")
    for entry in manifest["members"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not name or Path(name).name != name:
            raise MERError(f"{manifest_path}: member name {name!r} is not a plain name")
    return manifest
