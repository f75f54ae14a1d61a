"""The store the user folders of one users folder share: `<users_dir>/.shared/<sha256>`.

It holds the pre-trained committee's files once for every user (checksummed.BlobStore: a blob
is written atomically, named by its content, and never changed by a user's command). Folders
refer to blobs through their manifest's "stored" field. A blob no manifest names any longer (a
deleted user's) is garbage, removed by `collect_garbage` under the store's lock, which every
writer that makes a folder refer to blobs (create, a retrain's save) holds shared meanwhile:
a blob is never removed between a writer finding it in the store and its manifest naming it.
What a user folder is, and how users are locked, is trompa_mer.users' business.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import atomic
from .checksummed import BLOB_NAME, BlobStore
from .errors import MERError

SHARED_DIR = ".shared"
# the store's lock file name, beside the users' lock files (a user id never starts with '.')
STORE_LOCK = ".shared.lock"


class SharedStore:
    """The blobs of `<root>/.shared` and their lock file `lock_path`; every folder under
    `root` other than the store and the lock files' folder may refer to them."""

    def __init__(self, root, lock_path):
        self.root = Path(root)
        self.lock_path = Path(lock_path)
        self.blobs = BlobStore(self.root / SHARED_DIR)

    @property
    def path(self) -> Path:
        return self.blobs.path

    @contextlib.contextmanager
    def lock(self, timeout: float = 60.0, shared: bool = True):
        """Hold the store's lock for the block: shared while a folder comes to refer to blobs,
        exclusive for collecting the blobs no folder refers to."""
        with atomic.flock(self.lock_path, f"the shared store {self.path}", timeout, shared):
            yield

    def referenced(self) -> set:
        """Every blob a manifest under the root refers to (committed, uncommitted or abandoned
        folders alike: a blob is kept if anything names it). MERError naming a manifest that
        cannot be read: what it refers to is unknown, so nothing may go."""
        from .committee import CROWD_LAYOUT, MANIFEST

        names, referenced = (MANIFEST, CROWD_LAYOUT.manifest), set()
        with os.scandir(self.root) as entries:
            tops = sorted(e.name for e in entries if e.name not in (SHARED_DIR, self.lock_path.parent.name))
        for top in tops:
            if not (self.root / top).is_dir():
                continue
            for folder, _dirs, files in os.walk(self.root / top):
                for name in names:
                    if name not in files:
                        continue
                    manifest = Path(folder) / name
                    stored = atomic.read_json_object(manifest).get("stored", {})
                    specs = list(stored.values()) if isinstance(stored, dict) else None
                    if specs is None or not all(isinstance(x, dict) and isinstance(x.get("blob"), str)
                                                for x in specs):
                        raise MERError(f"{manifest}: field 'stored' is not {{file: {{\"blob\": sha256}}}}; "
                                       f"which shared files it needs is unknown")
                    referenced.update(x["blob"] for x in specs)
        return referenced

    def collect_garbage(self, timeout: float = 60.0, before=None) -> dict:
        """Remove the blobs no manifest refers to any longer, holding the store's lock
        exclusively; `before()` runs first under the lock (the users' leftovers of an
        interrupted delete). A manifest that cannot be read stops it before anything is
        removed (MERError naming it). Returns {"removed", "freed_bytes", "kept"}."""
        if not self.root.is_dir():
            return {"removed": 0, "freed_bytes": 0, "kept": 0}
        with self.lock(timeout, shared=False):
            if before is not None:
                before()
            referenced = self.referenced()
            removed = freed = kept = 0
            if self.path.is_dir():
                with os.scandir(self.path) as entries:
                    blobs = [e for e in entries if BLOB_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
                for entry in blobs:
                    if entry.name in referenced:
                        kept += 1
                        continue
                    freed += entry.stat(follow_symlinks=False).st_size
                    os.unlink(entry.path)
                    removed += 1
                atomic.fsync_dir(self.path)
        return {"removed": removed, "freed_bytes": freed, "kept": kept}
