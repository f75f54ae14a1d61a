"""A folder saved as one unit: its files plus a JSON manifest holding the sha256 of each.

Committees (committee.json) and a user's crowd-aware members (crowd.json) are stored this way.
Writing: the files go into a new temporary folder beside the destination, the manifest is
written last with every file's checksum, and the folder is swapped into place
(atomic.replace_dir), so a reader never sees half of one. Reading: the manifest is parsed, its
required fields checked, and every listed file read once and verified against its checksum
before anything in the folder is deserialized; the readers then build from those same verified
bytes (`materialized`: a private copy), never from the file again, so a file replaced after its
check is not used. Each refusal is a MERError naming the file and what was wrong.

Shared files (many user folders holding one pre-trained committee): a `BlobStore` keeps files
once, each under its sha256. A folder written with a store keeps in itself only what the store
does not hold; its manifest then says where each such file is:
  "store":  the store's path relative to the folder ("../../.shared"; only '..' parts and one name)
  "stored": {file: {"blob": sha256}}  the file is that blob
            {file: {"blob": sha256, "part": "<file>.part", "at": i, "start": s, "length": n,
                    "compression": "zlib"}}
            the file is part[:i] + blob[s:s+n] + part[i:], part decompressed (an XGBoost model
            whose leading rounds are the shared pre-trained booster's bytes: the part holds only
            the rest)
"checksums" still names every file's full content, verified on every read exactly like a file in
the folder; a blob is also checked against its own name. Readers of the members get the verified
bytes in a private temporary folder (`materialized`), as for a folder without "stored".
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from . import atomic
from .errors import MERError
from .quadrants import QUADRANTS


BLOB_NAME = re.compile(r"[0-9a-f]{64}")
PART_SUFFIX = ".part"
# a shared range shorter than this is not worth a reference: the file is kept whole
MIN_SHARED_RANGE = 1 << 14
# a compressed part expands to at most this many times its size + 1 MiB, and never beyond
# MAX_PART_BYTES (what the writer produces: ~3x; more is a doctored or damaged part)
PART_EXPANSION = 64
MAX_PART_BYTES = 1 << 30


def sha256_bytes(data) -> str:
    return hashlib.sha256(data).hexdigest()


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
        with atomic.synced_once(tmp):
            write(tmp)
        atomic.replace_dir(tmp, directory)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        inside = err.errno is not None and err.filename is not None and str(err.filename).startswith(str(tmp))
        if not inside:
            raise
        # name the file as it would have been saved, not the temporary folder (gone now)
        named = directory / os.path.relpath(err.filename, tmp)
        raise OSError(err.errno, err.strerror, str(named)) from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


class BlobStore:
    """Files shared by many checksummed folders, each stored once as `<path>/<sha256>`.

    A blob is written atomically (temporary file + rename) and, being named by its content,
    never changes after; only a blob whose bytes no longer match its name is written again (a
    repair: the same content). Nothing here deletes a blob."""

    def __init__(self, path):
        self.path = Path(path)

    def blob_path(self, digest: str) -> Path:
        if not BLOB_NAME.fullmatch(str(digest)):
            raise MERError(f"{self.path}: {digest!r} is not a blob name (a sha256 in hex)")
        return self.path / digest

    def has(self, digest) -> bool:
        return isinstance(digest, str) and BLOB_NAME.fullmatch(digest) is not None \
            and (self.path / digest).is_file()

    def add(self, data: bytes, digest: str | None = None) -> str:
        """Store `data` (whose sha256 is `digest` when given) unless an intact copy is there."""
        actual = sha256_bytes(data)
        if digest is not None and actual != digest:
            raise MERError(f"{self.path}: the bytes given for blob {digest} have sha256 {actual} (the source "
                           f"file changed while it was read?)")
        digest = actual
        path = self.blob_path(digest)
        if path.is_file() and sha256_file(path) == digest:
            return digest
        self.path.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(path, data)
        return digest


def _shared_range(data: bytes, blob: bytes):
    """(at, start, length): data[at:at+length] == blob[start:start+length], the longest such run
    found around a few probes of the blob, or None. Found in chunks: a megabyte costs a few ms."""
    best = None
    for fraction in (0.5, 0.25, 0.75):
        middle = int(len(blob) * fraction)
        probe = blob[middle:middle + 256]
        if len(probe) < 256:
            continue
        pos = data.find(probe)
        if pos < 0:
            continue
        shift = pos - middle  # data[i + shift] == blob[i] around the probe
        lo, hi = middle, middle + len(probe)
        for step in (1 << 16, 1 << 12, 1 << 8, 1):  # extend left, then right, coarse to fine
            while lo - step >= 0 and lo - step + shift >= 0 and \
                    blob[lo - step:lo] == data[lo - step + shift:lo + shift]:
                lo -= step
        for step in (1 << 16, 1 << 12, 1 << 8, 1):
            while hi + step <= len(blob) and hi + step + shift <= len(data) and \
                    blob[hi:hi + step] == data[hi + shift:hi + step + shift]:
                hi += step
        if best is None or hi - lo > best[2]:
            best = (lo + shift, lo, hi - lo)
    return best


def _share(folder: Path, manifest: dict, store: BlobStore, candidates: dict) -> dict:
    """Replace the folder's files that the store holds by references (in place, inside the
    folder being written): a file equal to a blob, or one holding a long run of a candidate
    blob ({file: [sha256, ...]}, e.g. the same member's pre-trained model). Returns 'stored'."""
    stored = {}
    names = set(manifest["checksums"])
    for name, digest in manifest["checksums"].items():
        path = folder / name
        if store.has(digest):
            stored[name] = {"blob": digest}
            path.unlink()
            continue
        part = name + PART_SUFFIX
        choices = [d for d in dict.fromkeys(candidates.get(name, ())) if store.has(d)]
        if not choices or part in names:
            continue
        data = path.read_bytes()
        best = None
        for blob_digest in choices:
            found = _shared_range(data, store.blob_path(blob_digest).read_bytes())
            if found and found[2] >= MIN_SHARED_RANGE and (best is None or found[2] > best[1][2]):
                best = (blob_digest, found)
        if best is None:
            continue
        blob_digest, (at, start, length) = best
        # the user's own bytes (an XGBoost member's new rounds) compress about 3x: zlib level
        # 1 keeps a save fast (~10 ms a member) and a user after 10 batch rounds under 2 MB.
        # The whole file (in memory now, in a folder not yet in place) goes before the part is
        # written, so the two never take space on the disk together.
        path.unlink()
        atomic.write_bytes(folder / part, zlib.compress(data[:at] + data[at + length:], 1))
        stored[name] = {"blob": blob_digest, "part": part, "at": at, "start": start, "length": length,
                        "compression": "zlib"}
    return stored


def store_field(store: BlobStore, folder) -> str:
    """The manifest's "store" field of a folder written at `folder`: the store's path relative
    to it, computed from the paths as they are named (never resolved through links, so a user
    folder or the store moved to another disk and linked back keeps the field the reader
    expects). Refused before anything refers to it when the reader would not accept it or would
    find another folder by it."""
    field = PurePosixPath(os.path.relpath(os.path.abspath(store.path), os.path.abspath(folder))).as_posix()
    where = Path(folder) / "manifest"
    found = _store_dir(Path(os.path.abspath(folder)), {"store": field}, where)
    if found != Path(os.path.abspath(store.path)):
        raise MERError(f"{folder}: cannot refer to the shared store {store.path} from here ({field!r})")
    return field


def share_files(folder, files, store: BlobStore | None = None, candidates: dict | None = None):
    """Checksum `files` (just written into `folder`) and, with a `store`, replace those the store
    holds by references at once (see `_share`): (checksums, stored). Called per member while a
    committee is written, so the folder never holds more than one member's whole files."""
    folder = Path(folder)
    checksums = {f: sha256_file(folder / f) for f in files}
    stored = {} if store is None else _share(folder, {"checksums": checksums}, store, candidates or {})
    return checksums, stored


def write_manifest(folder, manifest_name: str, manifest: dict, files, store: BlobStore | None = None,
                   candidates: dict | None = None, shared=None) -> dict:
    """Write `manifest` plus the checksums of `files` (already in `folder`) as its manifest.

    With a `store`, files the store holds are replaced by references (see the module's
    docstring); nothing is added to the store. `shared`: (checksums, stored) of files already
    handled by `share_files`, listed first."""
    folder = Path(folder)
    manifest = {k: v for k, v in manifest.items() if k not in ("store", "stored")}
    done_checksums, done_stored = shared if shared is not None else ({}, {})
    checksums, stored = share_files(folder, [f for f in files if f not in done_checksums], store, candidates)
    manifest["checksums"] = {**done_checksums, **checksums}
    stored = {**done_stored, **stored}
    if stored:
        manifest["store"] = store_field(store, folder)
        manifest["stored"] = stored
    atomic.write_json(folder / manifest_name, manifest)
    return manifest


def share_folder(source, destination, manifest_name: str, store: BlobStore) -> dict:
    """Write into the new folder `destination` the checksummed folder `source` with every file
    its manifest lists added to `store` and referenced from there (other files, e.g. a model
    card, are copied). Each file is checked against its checksum on the way. A manifest without
    checksums is copied as it is. Returns the manifest written."""
    source, destination = Path(source), Path(destination)
    manifest = atomic.read_json_object(source / manifest_name)
    checksums = manifest.get("checksums")
    listed = set(checksums) if isinstance(checksums, dict) else set()
    field = store_field(store, destination) if listed else None  # refused before anything is written
    destination.mkdir()
    for entry in sorted(source.iterdir()):
        if entry.name in listed or entry.name == manifest_name or entry.name.endswith(PART_SUFFIX):
            continue
        if entry.is_dir():
            shutil.copytree(entry, destination / entry.name)
        else:
            shutil.copy2(entry, destination / entry.name)
    if not listed:
        shutil.copy2(source / manifest_name, destination / manifest_name)
        return manifest
    contents = {}
    read_files(source, manifest, source / manifest_name, "committee", contents)
    stored = {}
    for name, digest in checksums.items():
        store.add(contents[name] if name in contents else (source / name).read_bytes(), digest)  # add re-checks
        stored[name] = {"blob": digest}
    manifest = {k: v for k, v in manifest.items() if k not in ("store", "stored")}
    manifest["store"] = field
    manifest["stored"] = stored
    atomic.write_json(destination / manifest_name, manifest)
    return manifest


def _store_dir(directory: Path, manifest: dict, manifest_path) -> Path:
    where = manifest.get("store")
    parts = PurePosixPath(where).parts if isinstance(where, str) else ()
    if (len(parts) < 2 or any(p != ".." for p in parts[:-1]) or parts[-1] in ("..", ".")
            or "\\" in where):
        raise MERError(f"{manifest_path}: field 'store' is {where!r}, expected the shared store's path "
                       f"relative to the folder ('..' parts and one name, e.g. '../../.shared')")
    return Path(os.path.normpath(directory.joinpath(*parts)))


def _stored_bytes(directory: Path, store_dir: Path, name: str, spec, manifest_path, blobs: dict) -> bytes:
    """The content of `name`, kept in the shared store (and a part in the folder)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("blob"), str) or not BLOB_NAME.fullmatch(spec["blob"]):
        raise MERError(f"{manifest_path}: field 'stored' entry for {name}: expected {{\"blob\": sha256, ...}}, "
                       f"got {spec!r}")
    digest = spec["blob"]
    blob_path = store_dir / digest
    if digest not in blobs:
        if not blob_path.is_file():
            raise MERError(f"{blob_path}: shared file of {directory / name} (listed in {manifest_path.name}) "
                           f"is missing from the shared store")
        data = blob_path.read_bytes()
        if sha256_bytes(data) != digest:
            raise MERError(f"{blob_path}: shared file of {directory / name} was changed or damaged (its "
                           f"sha256 no longer matches its name)")
        blobs[digest] = data
    blob = blobs[digest]
    if "part" not in spec:
        return blob
    part = spec["part"]
    numbers = [spec.get(k) for k in ("at", "start", "length")]
    if (not isinstance(part, str) or Path(part).name != part or not part.endswith(PART_SUFFIX)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers)
            or numbers[1] + numbers[2] > len(blob)):
        raise MERError(f"{manifest_path}: field 'stored' entry for {name}: expected a part file name and "
                       f"a range of the blob, got {spec!r}")
    part_path = directory / part
    if not part_path.is_file():
        raise MERError(f"{part_path}: listed in {manifest_path.name} (part of {name}) but missing")
    data = part_path.read_bytes()
    compression = spec.get("compression")
    if compression not in (None, "zlib"):
        raise MERError(f"{manifest_path}: field 'stored' entry for {name}: compression {compression!r}, "
                       f"expected 'zlib' or none")
    if compression == "zlib":
        # bounded before it is allocated: a part is the user's own bytes of one member file,
        # which zlib level 1 shrinks about 3x; a few doctored kilobytes could expand to gigabytes
        limit = min(MAX_PART_BYTES, PART_EXPANSION * len(data) + (1 << 20))
        decompressor = zlib.decompressobj()
        try:
            expanded = decompressor.decompress(data, limit)
            complete = decompressor.eof and not decompressor.unconsumed_tail
        except zlib.error:
            raise MERError(f"{part_path}: not a readable compressed part (the file was changed or damaged "
                           f"after the folder was saved)") from None
        if not complete:
            raise MERError(f"{part_path}: field 'stored' entry for {name} in {manifest_path.name}: the part "
                           f"decompresses to more than {limit} bytes, expected at most {PART_EXPANSION} times its "
                           f"{len(data)} bytes + 1 MiB (the file was changed or damaged after the folder was saved)")
        data = expanded
    at, start, length = numbers
    if at > len(data):
        raise MERError(f"{part_path}: shorter than {manifest_path.name} says (the file was changed or "
                       f"damaged after the folder was saved)")
    return data[:at] + blob[start:start + length] + data[at:]


def read_files(directory, manifest: dict, manifest_path, what: str, contents: dict | None = None) -> None:
    """Verify every file the manifest lists against its checksum (refusals as read_manifest's).

    Each file is read once and its bytes are hashed; with `contents` ({}), those verified bytes
    go into it ({file: bytes}) and are what a reader must build from: opening the file again
    would read whatever is there by then (a file replaced after its check)."""
    directory = Path(directory)
    manifest_path = Path(manifest_path)
    checksums = manifest["checksums"]
    stored = manifest.get("stored") or {}
    if not isinstance(stored, dict):
        raise MERError(f"{manifest_path}: field 'stored': expected an object {{file name: where}}")
    unknown = sorted(set(stored) - set(checksums))
    if unknown:
        raise MERError(f"{manifest_path}: field 'stored' names {unknown[0]}, which has no checksum")
    store_dir = _store_dir(directory, manifest, manifest_path) if stored else None
    blobs: dict = {}
    for name, digest in checksums.items():
        if Path(name).name != name:
            raise MERError(f"{manifest_path}: file name {name!r} must not contain a folder")
        path = directory / name
        if name in stored:
            data = _stored_bytes(directory, store_dir, name, stored[name], manifest_path, blobs)
            whole_blob = "part" not in stored[name] and stored[name]["blob"] == digest  # checked by name
            if not whole_blob and sha256_bytes(data) != digest:
                raise MERError(f"{path}: checksum does not match {manifest_path.name} (kept in the shared "
                               f"store; the file was changed or damaged after the {what} was saved)")
        else:
            if not path.is_file():
                raise MERError(f"{path}: listed in {manifest_path.name} but missing")
            data = path.read_bytes()
            if sha256_bytes(data) != digest:
                raise MERError(f"{path}: checksum does not match {manifest_path.name} "
                               f"(the file was changed or damaged after the {what} was saved)")
        if contents is not None:
            contents[name] = data


@contextlib.contextmanager
def materialized(directory, manifest: dict, contents: dict):
    """A private temporary folder holding every listed file of a verified folder by its name,
    written from the verified bytes (`contents` from read_files): the member loaders read
    exactly the bytes that were hashed, whatever happens to the folder or the shared store
    meanwhile (never the files themselves, never links to them)."""
    missing = [name for name in manifest["checksums"] if name not in contents]
    if missing:
        raise ValueError(f"materialized: no verified bytes for {missing[0]} (read_files(..., contents) first)")
    with tempfile.TemporaryDirectory(prefix="mer-folder-") as tmp:
        tmp = Path(tmp)
        for name in manifest["checksums"]:
            with open(tmp / name, "xb") as handle:
                handle.write(contents[name])
        try:
            yield tmp
        except MERError as err:  # a loader's refusal names the folder's file, not the copy
            raise MERError(str(err).replace(str(tmp), str(Path(directory)))) from None


def read_manifest(directory, manifest_name: str, required, what: str, missing_hint: str,
                  classes_required: bool = True, check=None, contents: dict | None = None) -> dict:
    """The verified manifest of a checksummed folder.

    Refused: a missing or unparsable manifest, a required field missing, classes other than
    Q1..Q4, a listed file (the scaler, a member's files) without a checksum, a checksum entry
    naming a path instead of a plain file name, a listed file that is missing, or a file whose
    sha256 differs. `what` names the folder's content in messages ("committee"). `check`
    (manifest, manifest path), called before any file is read, refuses a malformed manifest.
    Files kept in a shared store are verified the same way (read_files); with `contents` ({}),
    the verified bytes of every listed file go into it (build from them, not from the files).
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
    read_files(directory, manifest, manifest_path, what, contents)
    for entry in manifest["members"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not name or Path(name).name != name:
            raise MERError(f"{manifest_path}: member name {name!r} is not a plain name")
    return manifest
