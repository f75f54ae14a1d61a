"""The per-user folder: create, lock, read/write state atomically, history of rounds.

Layout of `<users_dir>/<user_id>/`:
    state.json            the user's state (below); the single commit point of every change
    committee-NNNN/       the user's copy of the committee at iteration NNNN (committee.json,
                          members, scaler); state["committee"] names the current one
    base-committee/       the committee as it was copied at creation; a cumulative update
                          starts again from it
    consensus.csv         hc/mix only: song, Q1..Q4 (unrounded relative frequencies among the
                          *other* listeners), n_listeners
    crowd-NNNN/, base-crowd/, crowd_features.csv
                          only for a user created with --crowd-member: the crowd-aware members
                          after NNNN rounds (state["crowd"] names the current folder), as
                          pre-trained, and the pool songs' crowd features without this user
                          (trompa_mer.crowd_loop); committed by the same state.json rename.
                          The crowd folders use committee.CROWD_LAYOUT; load_committee joins
                          them with committee-NNNN into the user's one committee
This module is the only one that knows these names.
Lock files live beside the user folders in `<users_dir>/.locks/<user_id in lower case>.lock`, so
a lock can be taken before the user folder exists (create), ids differing only in letter case
exclude each other, and deleting a user folder forgets the user.

Links: a user folder or `.shared` may be a link (moved to another disk): paths recorded in the
manifests are computed from the names, never resolved through links. One folder is one user: a
user folder linked inside the users folder, a state of another user id, and a link among the
user folder's own entries (OWN_ENTRIES, round folders) are refused before anything is read.

Shared files: `<users_dir>/.shared/<sha256>` (trompa_mer.shared_store) holds the pre-trained
committee's files once for every user. create adds them and writes committee-0000 and
base-committee as manifests referring to them; a retrain's committee keeps in the user folder
only the files that differ: changed GaussianNB/SGD members whole, an XGBoost member's appended
rounds (its leading bytes are the shared pre-trained booster's). Every load verifies each file,
shared or not, against the checksums as before. User folders written before the store (full
copies) are read as they are (not migrated); their next rounds are saved like anyone's,
referring to the blobs `.shared` holds (whole only where it holds none). Deleting a user folder
forgets the user (`delete`); `collect_garbage` then removes the blobs nothing refers to, under
the store's lock (`.locks/.shared.lock`), which create and a retrain's save hold shared while
their folders come to refer to blobs.

Crash safety: a retrain writes the next committee into a new `committee-NNNN` folder, loads it
back, then rewrites state.json atomically to point at it, then removes the folders of the round
before the previous one (the previous round's stay, so `undo` can restore it exactly). A process
killed at any moment leaves state.json naming a complete committee; stray folders and temporary
files from an interrupted change are removed under the lock by the next writer (`tidy`).

State (JSON object):
    format, user_id, mode, balanced, created, committee_source, annotations_source,
    iteration          number of retrain rounds done
    committee          folder name of the current committee
    asked              every song ever proposed and settled (answered or skipped), in order
    pending            songs proposed by get_hard_tracks and waiting for answers
    skipped            songs proposed that the listener did not answer (never asked again)
    answers            {song: "Q1".."Q4"} every answer so far (the cumulative training set)
    answer_values      {song: [arousal, valence]} the answers given as the listener's own values
                       (-1..1; their quadrant is in "answers"); absent until the first such
                       answer, so states written before it load as they are
    recommended        [{group, time, songs: {"Q1": song|null, ...}}]
    crowd              (--crowd-member users only) folder name of the current crowd members
    history            one entry per round: round, asked (songs), asked_at, answers, skipped,
                       answered_at, update (strategy), n_windows, and values ({song:
                       [arousal, valence]}) when the round had answers with own values
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import shutil
import uuid
from pathlib import Path


from . import atomic
from .checksummed import share_folder
from .errors import MERError
from .quadrants import QUADRANTS, parse_quadrant, quadrant_from_av, quadrant_name
from .scales import INTERNAL, Scale
from .shared_store import STORE_LOCK, SharedStore

STATE_FORMAT = 1
STATE_FILE = "state.json"
CONSENSUS_FILE = "consensus.csv"
COMMITTEE_PREFIX = "committee-"
BASE_COMMITTEE = "base-committee"  # the committee as copied at creation (cumulative updates restart here)
CROWD_PREFIX = "crowd-"  # crowd-NNNN: a --crowd-member user's crowd members (trompa_mer.crowd_loop)
BASE_CROWD = "base-crowd"  # the crowd members as pre-trained at creation
CROWD_FEATURES_FILE = "crowd_features.csv"  # the pool songs' crowd features without this user
LOCKS_DIR = ".locks"
# a user folder being deleted is first renamed to this (it vanishes from the users at once)
DELETING = re.compile(r"\.deleting-([A-Za-z0-9_][A-Za-z0-9_-]{0,127})-[0-9a-f]{8}")
# A name, never a path; a leading '-' is refused too, so an id never reads as a command flag.
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")
UPDATE_STRATEGIES = ("batch", "cumulative")
# what tidy may remove: round folders (and a folder swap's '.old'), and the temporaries of
# atomic / checksummed ('.<name>.<random>.tmp', '.<stem>.<random>.tmp<suffix>')
ROUND_FOLDER = re.compile(r"(committee-|crowd-)(\d{4,})(\.old)?")
# the entries of a user folder that commands read or replace (never links: check_own_entries)
OWN_ENTRIES = (STATE_FILE, BASE_COMMITTEE, BASE_CROWD, CONSENSUS_FILE, CROWD_FEATURES_FILE)
# the temporary folder of a create of user <id> (UserStore.create), removed when abandoned
CREATE_TMP = re.compile(r"\.tmp-([A-Za-z0-9_][A-Za-z0-9_-]{0,127})-[0-9a-f]{8}")
TEMPORARY = re.compile(r"\.[^/]+\.tmp(\.[A-Za-z0-9]+)?")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def validate_user_id(user_id) -> str:
    """Return `user_id` if it is a plain name (letters, digits, '_' and '-', 1..128 chars)."""
    if not isinstance(user_id, str) or not USER_ID_PATTERN.fullmatch(user_id):
        raise MERError(f"user id: expected 1-128 characters from A-Z a-z 0-9 _ - (not starting "
                       f"with '-'), got {user_id!r}")
    return user_id


def committee_folder_name(iteration: int) -> str:
    return f"{COMMITTEE_PREFIX}{int(iteration):04d}"


def crowd_folder_name(iteration: int) -> str:
    return f"{CROWD_PREFIX}{int(iteration):04d}"


class UserStore:
    """All user folders under one root. Every method validates the user id first."""

    def __init__(self, users_dir):
        self.users_dir = Path(users_dir)
        self.shared = SharedStore(self.users_dir, self.users_dir / LOCKS_DIR / STORE_LOCK)

    # --- paths ----------------------------------------------------------------------------
    def user_dir(self, user_id) -> Path:
        return self.users_dir / validate_user_id(user_id)

    def state_path(self, user_id) -> Path:
        return self.user_dir(user_id) / STATE_FILE

    def lock_path(self, user_id) -> Path:
        """The lock file of `user_id`, named by the id in lower case: ids that differ only in
        letter case (one folder on a case-insensitive file system, refused as twins) exclude
        each other, so two creates of `CaseN` and `caseN` at once cannot both pass the check."""
        return self.users_dir / LOCKS_DIR / f"{validate_user_id(user_id).lower()}.lock"

    def exists(self, user_id) -> bool:
        return self.state_path(user_id).is_file()

    def case_twin(self, user_id) -> str | None:
        """An existing user whose id differs from `user_id` only in letter case (the two would
        be one folder on a case-insensitive file system), or None."""
        key = validate_user_id(user_id).lower()
        if not self.users_dir.is_dir():
            return None
        with os.scandir(self.users_dir) as entries:
            for entry in entries:
                if entry.name != user_id and entry.name.lower() == key and not entry.name.startswith("."):
                    return entry.name
        return None

    def refuse_case_twin(self, user_id) -> None:
        twin = self.case_twin(user_id)
        if twin is not None:
            raise MERError(f"user id {user_id!r}: user {twin!r} exists ({self.users_dir / twin}); ids that "
                           f"differ only in letter case would share a folder on a case-insensitive file "
                           f"system, choose another id")

    def committee_dir(self, user_id, state: dict) -> Path:
        return self.user_dir(user_id) / state["committee"]

    def base_committee_dir(self, user_id) -> Path:
        return self.user_dir(user_id) / BASE_COMMITTEE

    def consensus_path(self, user_id) -> Path:
        return self.user_dir(user_id) / CONSENSUS_FILE

    def crowd_table_path(self, user_id) -> Path:
        return self.user_dir(user_id) / CROWD_FEATURES_FILE

    # --- the user's committee -------------------------------------------------------------
    def load_committee(self, user_id, state: dict, base: bool = False):
        """The user's committee (verified): the current one, or with base=True the one they were
        created with. A --crowd-member user's crowd-aware members are joined into it."""
        from .committee import CROWD_LAYOUT, Committee

        user_dir = self.user_dir(user_id)
        folder = user_dir / (BASE_COMMITTEE if base else state["committee"])
        if not folder.is_dir():
            if base:
                raise MERError(f"{folder}: missing; a cumulative update starts from the committee "
                               f"the user was created with (use --update batch, or recreate the user)")
            raise MERError(f"{folder}: committee folder not found (expected a folder with committee.json)")
        committee = Committee.load(folder)
        if not state.get("crowd"):
            return committee
        crowd_dir = user_dir / (BASE_CROWD if base else state["crowd"])
        if not crowd_dir.is_dir():
            raise MERError(f"{crowd_dir}: missing; the user's crowd members start from it (recreate the user"
                           f"{', or use --update batch' if base else ''})")
        return Committee.join(committee, Committee.load(crowd_dir, layout=CROWD_LAYOUT))

    def save_committee(self, user_id, committee, iteration: int) -> dict:
        """Save `committee` as the folders of round `iteration` (each part of a joined committee
        in its own folder); returns the state fields naming them. Nothing is committed until a
        state naming them is written."""
        from .committee import CROWD_LAYOUT

        fields, saved = {}, []
        try:
            with self.shared.lock():  # the manifests refer to blobs: none may be collected meanwhile
                for part in committee.parts:
                    crowd = part.layout is CROWD_LAYOUT
                    name = crowd_folder_name(iteration) if crowd else committee_folder_name(iteration)
                    folder = self.user_dir(user_id) / name
                    saved.append(folder)
                    part.save(folder, store=self.shared.blobs)
                    fields["crowd" if crowd else "committee"] = name
                # read back as every later command will, before a state names them (and so
                # before the previous round's folders are removed): a folder that does not load
                # is never committed, whatever made it unreadable
                for folder, part in zip(saved, committee.parts):
                    self._loads_back(folder, part.layout, folder)
        except BaseException:
            for folder in saved:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return fields

    @staticmethod
    def _loads_back(folder, layout, named) -> None:
        """Load the folder just written as the next command will (checksums, shared store,
        members); MERError naming it (`named`: where it goes) when it does not."""
        from .committee import Committee

        try:
            Committee.load(folder, layout=layout)
        except MERError as err:
            raise MERError(f"{named}: the {layout.what} just saved does not load back ({err}); it was "
                           f"removed and nothing was changed") from None

    def read_crowd_table(self, user_id):
        from .crowd_loop import read_crowd_table

        return read_crowd_table(self.crowd_table_path(user_id))

    # --- locking --------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, user_id, timeout: float = 60.0, shared: bool = False, poll: float = 0.05):
        """Hold the user's lock (exclusive, or shared for readers) for the block.

        A second process waits up to `timeout` seconds, then gets a MERError. The lock is an
        flock on a file, so the kernel releases it when the holder exits or is killed.
        """
        with atomic.flock(self.lock_path(user_id), f"user {user_id!r}", timeout, shared, poll):
            yield

    # --- one command's hold on a user -------------------------------------------------------
    @contextlib.contextmanager
    def session(self, user_id, lock_timeout: float = 60.0, shared: bool = False):
        """A UserSession for the block: the user's lock (exclusive, or shared for a command that
        only reads) taken once, the state read once, and under the exclusive lock what an
        interrupted change left behind tidied before anything else is read."""
        validate_user_id(user_id)
        with self.lock(user_id, lock_timeout, shared=shared):
            state = self.read_state(user_id)
            if not shared:
                self.tidy(user_id, state)
            yield UserSession(self, user_id, state, shared)

    # --- state ----------------------------------------------------------------------------
    def read_state(self, user_id) -> dict:
        """The user's state, refused (MERError, nothing changed) when it is inconsistent with
        the user folder: see `check_state_folders`."""
        path = self.state_path(user_id)
        if not path.is_file():
            raise MERError(f"user {user_id!r}: no such user ({path} not found); create it with create_user.py")
        self.check_user_folder(user_id)
        self.check_own_entries(user_id)  # before state.json is read: it may be the link
        state = atomic.read_json_object(path)
        owner = state.get("user_id", user_id)
        if owner != user_id:
            user_dir = self.user_dir(user_id)
            how = f" ({user_dir} is a link to {os.readlink(user_dir)})" if user_dir.is_symlink() else ""
            raise MERError(f"{path}: belongs to user {owner!r}, not {user_id!r}{how}; one folder is one "
                           f"user (an id never acts as another): remove {user_dir} or recreate the user; "
                           f"nothing was changed")
        if state.get("format") != STATE_FORMAT:
            raise MERError(f"{path}: field 'format': expected {STATE_FORMAT}, got {state.get('format')!r}")
        missing = [k for k in ("mode", "committee", "iteration", "pending", "asked") if k not in state]
        if missing:
            raise MERError(f"{path}: missing field(s) {', '.join(missing)}")
        self.check_state_folders(user_id, state)
        return state

    def check_user_folder(self, user_id) -> None:
        """Refuse a user folder that is a link to another folder of the users folder (another
        user's: `ln -s bob mallory` would let mallory act as bob under a lock of its own). A
        link to a folder elsewhere (the user moved to another disk) is the user's folder."""
        user_dir = self.user_dir(user_id)
        if not user_dir.is_symlink():
            return
        target = Path(os.path.realpath(user_dir))
        users = Path(os.path.realpath(self.users_dir))
        if target == users or users in target.parents:
            raise MERError(f"{user_dir}: is a link to {os.readlink(user_dir)}, inside the users folder "
                           f"{self.users_dir} (another user's folder); one folder is one user (an id never "
                           f"acts as another): remove the link; nothing was changed")

    def check_own_entries(self, user_id) -> None:
        """Refuse a link among the entries of the user folder that commands read or replace
        (the state, the committee and crowd folders, the consensus and crowd tables): each is
        the user's own, never another user's (a `base-committee` linked into bob's folder would
        train mallory from bob's). The user folder itself may be a link (another disk)."""
        user_dir = self.user_dir(user_id)
        if not user_dir.is_dir():
            return
        with os.scandir(user_dir) as entries:
            for entry in entries:
                own = (entry.name in OWN_ENTRIES or ROUND_FOLDER.fullmatch(entry.name) is not None)
                if own and entry.is_symlink():
                    path = user_dir / entry.name
                    raise MERError(f"{path}: is a link (to {os.readlink(path)}); a user's files are in the "
                                   f"user's own folder, never another user's: replace the link by the "
                                   f"{'folder' if path.is_dir() else 'file'} itself, or delete {user_dir} and "
                                   f"recreate the user; nothing was changed")

    def check_state_folders(self, user_id, state: dict) -> None:
        """Refuse a state whose folder fields do not name this round's folders inside the user
        folder: 'iteration' a whole number >= 0, 'committee' exactly committee-NNNN of that
        iteration (and 'crowd', when present, crowd-NNNN), each an existing folder (not a link).
        The message says what is inconsistent and how to recover; nothing is changed, so a
        damaged or hand-edited state never makes a command delete or read another folder."""
        path = self.state_path(user_id)
        user_dir = self.user_dir(user_id)
        self.check_own_entries(user_id)
        iteration = state.get("iteration")
        if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
            raise MERError(f"{path}: field 'iteration' is {iteration!r}, expected a whole number >= 0; "
                           f"nothing was changed (restore the state or delete {user_dir} and recreate the user)")
        fields = [("committee", committee_folder_name(iteration), COMMITTEE_PREFIX)]
        if state.get("crowd") is not None:
            fields.append(("crowd", crowd_folder_name(iteration), CROWD_PREFIX))
        for field, expected, prefix in fields:
            named = state.get(field)
            if named != expected:
                raise MERError(f"{path}: field {field!r} is {named!r} but 'iteration' {iteration} means "
                               f"{expected!r} (a folder of this user); the state is inconsistent, nothing "
                               f"was changed: restore state.json, or delete {user_dir} and recreate the user")
            folder = user_dir / expected
            atomic.recover_dir(folder)  # a swap interrupted between its two renames
            if folder.is_symlink() or not folder.is_dir():
                present = sorted(p.name for p in user_dir.iterdir()
                                 if p.name.startswith(prefix) and p.is_dir()) if user_dir.is_dir() else []
                raise MERError(f"{path}: field {field!r} names {expected}, which is missing from {user_dir} "
                               f"(its {prefix}NNNN folders: {', '.join(present) or 'none'}); the state is "
                               f"inconsistent, nothing was changed: restore that folder, or delete {user_dir} "
                               f"and recreate the user")

    def write_state(self, user_id, state: dict) -> None:
        atomic.write_json(self.state_path(user_id), state)

    def read_consensus(self, user_id) -> pd.DataFrame | None:
        path = self.consensus_path(user_id)
        if not path.is_file():
            return None
        return read_consensus_csv(path)

    # --- create ---------------------------------------------------------------------------
    def create(self, user_id, committee_source, mode: str, balanced: bool = False,
               consensus: pd.DataFrame | None = None, annotations_source=None,
               crowd=None) -> dict:
        """Create the user folder (call under `lock`). The folder is assembled under a temporary
        name and renamed into place, so it either exists complete or not at all.

        crowd: (crowd members as a committee with CROWD_LAYOUT, crowd table) for a
        --crowd-member user (trompa_mer.crowd_loop.prepare)."""
        user_dir = self.user_dir(user_id)
        self.refuse_case_twin(user_id)
        if user_dir.exists():
            raise MERError(f"user {user_id!r} already exists ({user_dir})")
        self.users_dir.mkdir(parents=True, exist_ok=True)
        self.remove_abandoned_creates(user_id)
        tmp = self.users_dir / f".tmp-{user_id}-{uuid.uuid4().hex[:8]}"
        try:
            with self.shared.lock():  # the folder refers to blobs from before its rename on
                return self._assemble(user_id, tmp, committee_source, mode, balanced, consensus,
                                      annotations_source, crowd)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _assemble(self, user_id, tmp, committee_source, mode, balanced, consensus, annotations_source,
                  crowd) -> dict:
        """Write the new user's folder under the temporary name `tmp`, rename it into place and
        return its state."""
        user_dir = self.user_dir(user_id)
        tmp.mkdir()
        committee_name = committee_folder_name(0)
        # the committee's files once in the shared store; both folders refer to them
        from .committee import COMMITTEE_LAYOUT

        written = share_folder(committee_source, tmp / committee_name, COMMITTEE_LAYOUT.manifest, self.shared.blobs)
        if written.get("stored"):  # its files are found through the store: read back as later
            self._loads_back(tmp / committee_name, COMMITTEE_LAYOUT, user_dir / committee_name)
        shutil.copytree(tmp / committee_name, tmp / BASE_COMMITTEE)
        if consensus is not None:
            write_consensus_csv(consensus, tmp / CONSENSUS_FILE)
        state = new_state(user_id, mode, balanced, committee_name,
                          str(committee_source), None if annotations_source is None else str(annotations_source))
        if crowd is not None:
            from .crowd_loop import write_crowd_table

            members, table = crowd
            write_crowd_table(table, tmp / CROWD_FEATURES_FILE)
            for name in (crowd_folder_name(0), BASE_CROWD):
                (tmp / name).mkdir()
                members.write_into(tmp / name)
            state["crowd"] = crowd_folder_name(0)
        atomic.write_json(tmp / STATE_FILE, state)
        os.rename(tmp, user_dir)
        atomic.fsync_dir(self.users_dir)
        return state

    def remove_abandoned_creates(self, user_id) -> None:
        """Remove the temporary folders (`.tmp-<id>-<8 hex>`) of creates that were killed before
        they renamed their folder into place (call under `user_id`'s exclusive lock). A create
        writes its folder only while it holds its id's lock, so a folder whose id's lock is free
        has no writer left: taken without waiting, and held while the folder goes; one whose
        lock is held (a create in progress, any command of that user) is left alone."""
        if not self.users_dir.is_dir():
            return
        with os.scandir(self.users_dir) as entries:
            found = sorted((e.name, m.group(1)) for e in entries
                           if (m := CREATE_TMP.fullmatch(e.name)) and e.is_dir(follow_symlinks=False))
        for name, owner in found:
            if owner.lower() == user_id.lower():  # ours: this process holds the lock
                shutil.rmtree(self.users_dir / name, ignore_errors=True)
                continue
            try:
                with self.lock(owner, timeout=0):
                    shutil.rmtree(self.users_dir / name, ignore_errors=True)
            except MERError:  # busy: its writer may be alive
                continue

    def tidy(self, user_id, state: dict) -> None:
        """Remove what an interrupted change left behind (call under the exclusive lock).

        Only names this module's writers create are touched, and only inside the user folder:
        temporary files and folders ('.<name>.<random>.tmp...'), a folder swap's '<folder>.old',
        committee/crowd folders of rounds the state has moved past (NNNN < iteration - 1: the
        previous round's stay for `undo`) and of an uncommitted retrain or an undone round
        (NNNN = iteration + 1). The state is checked first
        (`check_state_folders`), so an inconsistent one is refused before anything is removed.
        """
        self.check_state_folders(user_id, state)
        user_dir = self.user_dir(user_id)
        iteration = int(state["iteration"])
        keep = {state["committee"], state.get("crowd")}
        for entry in user_dir.iterdir():
            name = entry.name
            match = ROUND_FOLDER.fullmatch(name)
            if match and name not in keep:
                rnd = int(match.group(2))
                stale = rnd < iteration - 1 or rnd == iteration + 1 or match.group(3) is not None
            else:
                stale = TEMPORARY.fullmatch(name) is not None
            if not stale or entry.is_symlink():
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
        create_tmp = re.compile(rf"\.tmp-{re.escape(user_id)}-[0-9a-f]{{8}}")
        for entry in self.users_dir.iterdir():
            if create_tmp.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)


    # --- listener management (manage_users.py) ----------------------------------------------
    def user_ids(self) -> list[str]:
        """Every user id with a state in the users folder, sorted."""
        if not self.users_dir.is_dir():
            return []
        with os.scandir(self.users_dir) as entries:
            names = [e.name for e in entries if USER_ID_PATTERN.fullmatch(e.name)]
        return sorted(n for n in names if (self.users_dir / n / STATE_FILE).is_file())

    def refuse_unknown(self, user_id) -> None:
        """MERError listing the users there are when `user_id` is not one of them."""
        if self.exists(user_id):
            return
        known = self.user_ids()
        listed = ", ".join(known[:20]) + (f" ... ({len(known)} in all)" if len(known) > 20 else "")
        raise MERError(f"user {user_id!r}: no such user in {self.users_dir} "
                       f"(users: {listed or 'none yet; create one with create_user.py'})")

    def undo(self, user_id, timeout: float = 60.0) -> dict:
        """Take back the user's last retrain round: the state before it (`previous_state`: the
        round's songs pending again, its answers withdrawn) naming the committee (and crowd)
        folders of the round before, which the retrain kept; then the undone round's folders
        go. Refused (nothing changed) when no round was answered, a round is pending, or the
        previous committee is not kept (rounds made before undo existed; a second undo)."""
        validate_user_id(user_id)
        self.refuse_unknown(user_id)
        with self.lock(user_id, timeout):
            state = self.read_state(user_id)
            path = self.state_path(user_id)
            if state["pending"]:
                raise MERError(f"user {user_id!r}: {len(state['pending'])} songs are pending "
                               f"({', '.join(state['pending'])}): only an answered round can be undone, "
                               f"once (answer them with retrain_model.py first); nothing was changed")
            previous = previous_state(state, str(path))
            user_dir = self.user_dir(user_id)
            for field in ("committee", "crowd"):
                if previous.get(field) is None:
                    continue
                folder = user_dir / previous[field]
                if folder.is_symlink() or not folder.is_dir():
                    raise MERError(f"user {user_id!r}: round {state['iteration']} cannot be undone: the "
                                   f"{field} before it ({folder}) was not kept (only the last round can be "
                                   f"undone, once, and only rounds answered since undo exists); nothing "
                                   f"was changed")
            self.check_state_folders(user_id, previous)
            self.load_committee(user_id, previous)  # verified before the state names it again
            self.write_state(user_id, previous)      # the commit point
            self.tidy(user_id, previous)             # the undone round's folders go
        return {"user_id": user_id, "undone": state["iteration"], "iteration": previous["iteration"],
                "pending": previous["pending"], "withdrawn": sorted(state["history"][-1]["answers"])}

    def delete(self, user_id, timeout: float = 60.0) -> dict:
        """Forget a user: their folder goes (renamed aside first, so it vanishes at once; a
        folder moved to another disk and linked back goes with its link), nothing else. The
        lock file stays (another process may be waiting on it). Call `collect_garbage` after."""
        validate_user_id(user_id)
        self.refuse_unknown(user_id)
        user_dir = self.user_dir(user_id)
        with self.lock(user_id, timeout):
            self.refuse_unknown(user_id)
            self.check_user_folder(user_id)  # a link into the users folder: another user's
            target = None
            if user_dir.is_symlink():
                owner = atomic.read_json_object(self.state_path(user_id)).get("user_id", user_id)
                if owner != user_id:
                    raise MERError(f"{user_dir}: is a link to {os.readlink(user_dir)}, the folder of user "
                                   f"{owner!r}, not {user_id!r}; remove the link itself, nothing was deleted")
                target = Path(os.path.realpath(user_dir))
            aside = self.users_dir / f".deleting-{user_id}-{uuid.uuid4().hex[:8]}"
            os.rename(user_dir, aside)
            atomic.fsync_dir(self.users_dir)
            if target is not None:
                shutil.rmtree(target)
                aside.unlink()
            else:
                shutil.rmtree(aside)
        return {"user_id": user_id, "folder": str(user_dir)}

    def collect_garbage(self, timeout: float = 60.0) -> dict:
        """The shared store's blobs no manifest refers to any longer (a deleted user's) removed
        (shared_store.SharedStore.collect_garbage), the folders of an interrupted delete first."""
        return self.shared.collect_garbage(timeout, before=self._remove_interrupted_deletes)

    def _remove_interrupted_deletes(self) -> None:
        """Remove the folders a delete renamed aside and was stopped before removing."""
        with os.scandir(self.users_dir) as entries:
            leftovers = [e.name for e in entries if DELETING.fullmatch(e.name)]
        for name in leftovers:
            aside = self.users_dir / name
            if aside.is_symlink():
                shutil.rmtree(os.path.realpath(aside), ignore_errors=True)
                aside.unlink()
            else:
                shutil.rmtree(aside, ignore_errors=True)


class UserSession:
    """One command's hold on one user (UserStore.session): the state as read under the lock,
    the committee loaded at most once (`committee`), and a change committed once (`commit`:
    the new committee's folders saved and read back, the state naming them written, the
    previous round's leftovers tidied). Only valid inside its `with` block."""

    def __init__(self, store: UserStore, user_id: str, state: dict, shared: bool):
        self.store, self.user_id, self.state, self.shared = store, user_id, state, shared
        self._committees = {}

    @property
    def user_dir(self) -> Path:
        return self.store.user_dir(self.user_id)

    @property
    def state_path(self) -> Path:
        return self.store.state_path(self.user_id)

    @property
    def committee_dir(self) -> Path:
        return self.store.committee_dir(self.user_id, self.state)

    @property
    def consensus_path(self) -> Path:
        return self.store.consensus_path(self.user_id)

    def committee(self, base: bool = False):
        """The user's committee as the state names it (base=True: as the user was created),
        loaded and verified on first use, then the same object."""
        if base not in self._committees:
            self._committees[base] = self.store.load_committee(self.user_id, self.state, base=base)
        return self._committees[base]

    def read_consensus(self):
        return self.store.read_consensus(self.user_id)

    def read_crowd_table(self):
        return self.store.read_crowd_table(self.user_id)

    def commit(self, new_state: dict, committee=None) -> dict:
        """Write `new_state` (atomically: the commit point), after saving `committee`, when
        given, as the folders of the next round (their names are added to the state). Returns
        the state written, which the session holds from then on."""
        if self.shared:
            raise MERError(f"user {self.user_id!r}: a change needs the exclusive lock (internal error)")
        if committee is not None:
            new_state = {**new_state, **self.store.save_committee(self.user_id, committee,
                                                                 int(self.state["iteration"]) + 1)}
        self.store.write_state(self.user_id, new_state)
        if committee is not None:
            self.store.tidy(self.user_id, new_state)  # the folders of the round before go
        self.state, self._committees = new_state, {}
        return new_state


def previous_state(state: dict, where: str = "state") -> dict:
    """The state as it was before its last retrain round (record_answers undone): the round's
    songs pending again (since when they were asked), its answers and values withdrawn, the
    iteration and the folder names one back, its history entry gone. MERError when there is
    no round to undo or the history does not match the state."""
    history = state.get("history") or []
    iteration = state["iteration"]
    if iteration < 1 or not history:
        raise MERError(f"user {state.get('user_id')!r}: nothing to undo (no round answered yet)")
    last = history[-1]
    kinds = {"asked": list, "skipped": list, "answers": dict}
    # a damaged or hand-edited entry is refused, never read as "nothing asked"
    consistent = (isinstance(last, dict) and isinstance(last.get("values", {}), dict)
                  and all(isinstance(last.get(k), t) and isinstance(state.get(k), t) for k, t in kinds.items()))
    if consistent:
        asked, skipped, answers, values = last["asked"], last["skipped"], last["answers"], last.get("values", {})
        stored_values = state.get("answer_values", {})
        consistent = (last.get("round") == iteration
                      and state["asked"][len(state["asked"]) - len(asked):] == asked
                      and state["skipped"][len(state["skipped"]) - len(skipped):] == skipped
                      and all(song in state["answers"] for song in answers)
                      and all(song in stored_values for song in values))
    if not consistent:
        raise MERError(f"{where}: the last 'history' entry does not match round {iteration} of the state "
                       f"(asked, skipped, answers); cannot undo it, nothing was changed")
    new = json.loads(json.dumps(state))
    del new["asked"][len(new["asked"]) - len(asked):]
    del new["skipped"][len(new["skipped"]) - len(skipped):]
    for song in answers:
        del new["answers"][song]
    for song in values:
        del new["answer_values"][song]
    if "answer_values" in new and not new["answer_values"]:
        del new["answer_values"]  # absent until the first answer with values (record_answers)
    new["pending"] = list(asked)
    if last.get("asked_at") is not None:
        new["pending_since"] = last["asked_at"]
    if last.get("strategy") is not None:  # the strategy that chose the round's songs (issue 21)
        new["pending_strategy"] = last["strategy"]
    if last.get("candidates") is not None:  # the candidate sample it ranked (issue 22)
        new["pending_candidates"] = last["candidates"]
    new["iteration"] = iteration - 1
    new["committee"] = committee_folder_name(iteration - 1)
    if new.get("crowd") is not None:
        new["crowd"] = crowd_folder_name(iteration - 1)
    new["history"].pop()
    return new


# --- consensus table on disk ----------------------------------------------------------------
def write_consensus_csv(consensus: pd.DataFrame, path) -> None:
    """song, Q1..Q4 unrounded (Python's shortest round-trip repr), n_listeners."""
    table = consensus.reset_index()
    table = table.rename(columns={table.columns[0]: "song"})[["song", *QUADRANTS, "n_listeners"]]
    with atomic.atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        table.to_csv(handle, index=False)


def read_consensus_csv(path) -> pd.DataFrame:
    import pandas as pd
    try:
        table = pd.read_csv(path, dtype={"song": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise MERError(f"{path}: cannot parse as CSV ({err})") from None
    missing = [c for c in ("song", *QUADRANTS, "n_listeners") if c not in table.columns]
    if missing:
        raise MERError(f"{path}: missing column(s) {', '.join(missing)}")
    return table.set_index("song")


# --- the state machine (pure functions on the state dict) -----------------------------------
def new_state(user_id, mode, balanced, committee_name, committee_source=None, annotations_source=None) -> dict:
    return {
        "format": STATE_FORMAT,
        "user_id": user_id,
        "mode": mode,
        "balanced": bool(balanced),
        "created": now_iso(),
        "committee_source": committee_source,
        "annotations_source": annotations_source,
        "iteration": 0,
        "committee": committee_name,
        "asked": [],
        "pending": [],
        "skipped": [],
        "answers": {},
        "recommended": [],
        "history": [],
    }


def record_queries(state: dict, songs, when: str | None = None, candidates: dict | None = None) -> dict:
    """A copy of `state` with `songs` pending (a round opens). candidates: how the songs were
    chosen when only a random sample of the unlabelled songs was ranked ({"size", "unlabelled",
    "seed"}), kept as "pending_candidates" until the round is answered, then in its history."""
    if state["pending"]:
        raise MERError(f"user {state.get('user_id')!r}: a round is already pending; answer it first")
    new = json.loads(json.dumps(state))
    new["pending"] = list(songs)
    new["pending_since"] = when or now_iso()
    if candidates is not None:
        new["pending_candidates"] = dict(candidates)
    return new


class AnswerPairs(dict):
    """A decoded JSON object that also keeps every (key, value) pair in file order, so a key
    given twice (which json.loads would silently merge, keeping the last) stays visible."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.pairs = list(pairs)


class LongNumber:
    """An integer of the answers too long for Python to convert (more than 4300 digits: int()
    refuses it, and json.loads with it): kept as its length, so the refusal names the file and
    the song and describes the number instead of printing it."""

    def __init__(self, text: str):
        self.negative = text.startswith("-")
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<a {self.digits}-digit {'negative ' if self.negative else ''}integer>"


def _parse_int(text: str):
    try:
        return int(text)
    except ValueError:
        return LongNumber(text)


def decode_answers_json(text: str, source: str):
    """JSON text (a UTF-8 byte-order mark allowed) -> value whose objects are AnswerPairs."""
    try:
        return json.loads(text.lstrip("\ufeff"), object_pairs_hook=AnswerPairs, parse_int=_parse_int)
    except json.JSONDecodeError as err:
        raise MERError(f"{source}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno}); "
                       f"expected a JSON object {{song_id: \"Q1\"..\"Q4\"}}") from None
    except RecursionError:
        raise MERError(f"{source}: JSON nested too deeply (expected a JSON object {{song_id: \"Q1\"..\"Q4\"}})") from None


def read_answers_arg(value) -> tuple[object, str]:
    """The -a argument: a path to a JSON file, or (when no such file exists) inline JSON text.
    A file may start with a UTF-8 byte-order mark (spreadsheet tools write one)."""
    text = str(value)
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. inline JSON longer than a file name may be
        is_file = False
    if text.lstrip("\ufeff").lstrip().startswith("{") and not is_file:
        return decode_answers_json(text, "annotations (inline JSON)"), "annotations (inline JSON)"
    if path.is_dir():
        raise MERError(f"{path}: is a folder (expected a JSON file {{song_id: \"Q1\"..\"Q4\"}})")
    if not path.is_file():
        raise MERError(f"{text}: annotation file not found (expected a JSON file {{song_id: \"Q1\"..\"Q4\"}})")
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MERError(f"{path}: not UTF-8 text (expected a JSON object {{song_id: \"Q1\"..\"Q4\"}})") from None
    return decode_answers_json(raw, str(path)), str(path)


def _shown(key) -> str:
    """A song id as an error message shows it: quoted when it holds a line break or another
    unprintable character, so the message stays one line."""
    text = str(key)
    return text if text.isprintable() else repr(text)


ANSWER_FORMS = 'Q1, Q2, Q3 or Q4, or {"arousal": a, "valence": v} with numbers in -1..1'
VALUE_KEYS = ("arousal", "valence")


def answer_forms(scale: Scale = INTERNAL) -> str:
    """What an answer may be, with the values' scale (ANSWER_FORMS on -1..1)."""
    return ANSWER_FORMS.replace("-1..1", str(scale))


def parse_answer_value(value, scale: Scale = INTERNAL) -> tuple[int, tuple | None]:
    """One answer: a quadrant ('Q1'..'Q4', 1..4) -> (index, None), or the listener's own values
    {"arousal": a, "valence": v} (numbers on `scale`, -1..1 by default) -> (their quadrant,
    (a, v) mapped onto -1..1, whose 0 counts as positive). MERError saying what is wrong
    otherwise."""
    if not isinstance(value, dict):
        return parse_quadrant(value), None
    pairs = getattr(value, "pairs", list(value.items()))
    keys = [k for k, _ in pairs]
    problems = []
    missing = [k for k in VALUE_KEYS if k not in keys]
    if missing:
        problems.append("missing " + " and ".join(repr(k) for k in missing))
    extra = [k for k in dict.fromkeys(keys) if k not in VALUE_KEYS]
    if extra:
        problems.append("unexpected " + ", ".join(repr(_shown(k)) for k in extra))
    twice = [k for k in VALUE_KEYS if keys.count(k) > 1]
    if twice:
        problems.append(" and ".join(repr(k) for k in twice) + " given twice")
    numbers = []
    for key in VALUE_KEYS:
        if key not in keys:
            continue
        number = dict(pairs)[key]
        if isinstance(number, LongNumber):
            problems.append(f"{key} {number!r} is outside {scale}")
        elif isinstance(number, bool) or not isinstance(number, (int, float)):
            problems.append(f"{key} {number!r} is not a number")
        elif isinstance(number, float) and not math.isfinite(number):
            problems.append(f"{key} {number!r} is not finite")
        elif not scale.contains(number):
            problems.append(f"{key} {number!r} is outside {scale}")
        else:
            numbers.append(scale.to_internal(number))
    if problems:
        raise MERError("; ".join(problems))
    arousal, valence = numbers
    return int(quadrant_from_av(arousal, valence)), (arousal, valence)


def _shown_value(value) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{_shown(k)!r}: {v!r}" for k, v in getattr(value, "pairs", value.items()))
        return "{" + inner + "}"
    return repr(value)


def parse_answer_labels(raw, state: dict, source: str = "annotations",
                        scale: Scale = INTERNAL) -> tuple[dict, dict]:
    """Validate listener answers against the pending round: ({song: quadrant index}, {song:
    (arousal, valence)} for the answers given as the listener's own values).

    An answer is a quadrant ("Q1".."Q4", case-insensitive, or 1..4) or {"arousal": a, "valence":
    v} with numbers in -1..1 (its quadrant: quadrants.quadrant_from_av, 0 counts as positive);
    both forms may be mixed. `raw` is the decoded JSON (an AnswerPairs keeps a key given twice).
    Every problem is collected and reported in one line: songs that were not asked (or already
    answered), invalid answers (with what is wrong: a missing or extra key, a value that is not
    a finite number in -1..1), one song given twice with different answers (in any spelling).
    `scale`: the values' scale (--scale, e.g. 1..9), mapped onto -1..1 (scales.Scale).
    """
    user = state.get("user_id")
    if not isinstance(raw, dict):
        raise MERError(f"{source}: expected a JSON object {{song_id: \"Q1\"..\"Q4\"}}, got {type(raw).__name__}")
    if not raw:
        raise MERError(f"{source}: no answers (expected at least one pending song with a label)")
    pending = set(state["pending"])
    not_pending, bad_labels, duplicates = [], [], []
    answers: dict[str, tuple] = {}
    for key, value in getattr(raw, "pairs", raw.items()):
        song = str(key).strip().lower()
        if song not in pending:
            not_pending.append(_shown(key))
            continue
        try:
            label = parse_answer_value(value, scale)
        except MERError as err:
            why = "" if not isinstance(value, dict) else f" ({err})"
            bad_labels.append(f"{_shown(key)}={_shown_value(value)}{why}")
            continue
        if song in answers and answers[song] != label:
            duplicates.append(_shown(key))
        answers[song] = label
    problems = []
    if not_pending:
        where = "pending songs are " + (", ".join(state["pending"]) if pending else "none (run get_hard_tracks.py first)")
        problems.append(f"songs not pending for user {user!r}: {', '.join(not_pending)} ({where})")
    if bad_labels:
        problems.append(f"invalid labels (expected {answer_forms(scale)}): {', '.join(bad_labels)}")
    if duplicates:
        problems.append(f"songs given twice with different labels: {', '.join(dict.fromkeys(duplicates))}")
    if problems:
        raise MERError(f"{source}: " + "; ".join(problems) + "; nothing was changed")
    quadrants = {song: q for song, (q, _) in answers.items()}
    values = {song: av for song, (_, av) in answers.items() if av is not None}
    return quadrants, values


def parse_answers(raw, state: dict, source: str = "annotations") -> dict:
    """Validate listener answers against the pending round; return {song: quadrant index}
    (an answer given as own values counts with its quadrant: parse_answer_labels keeps them)."""
    return parse_answer_labels(raw, state, source)[0]


def stored_answers(state: dict, where: str = "state") -> tuple[dict, dict]:
    """Every answer so far from a state: ({song: quadrant index}, {song: (arousal, valence)}).
    A state written before answers could carry values has none; a damaged entry is refused
    naming the field."""
    quadrants = {}
    for song, label in state.get("answers", {}).items():
        quadrants[song] = parse_quadrant(label, f"{where}: field 'answers' song {_shown(song)}")
    values = {}
    stored = state.get("answer_values", {})
    if not isinstance(stored, dict):
        raise MERError(f"{where}: field 'answer_values' is {stored!r}, expected an object {{song: [arousal, valence]}}")
    for song, pair in stored.items():
        ok = (isinstance(pair, list) and len(pair) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool) and -1 <= x <= 1
                      for x in pair))
        if not ok or song not in quadrants or quadrants[song] != int(quadrant_from_av(*pair)):
            raise MERError(f"{where}: field 'answer_values' song {_shown(song)}: expected [arousal, valence] "
                           f"in -1..1 matching its quadrant in 'answers', got {pair!r}")
        values[song] = (float(pair[0]), float(pair[1]))
    return quadrants, values


def record_answers(state: dict, answers: dict, update: str, committee_name: str,
                   n_windows: int, when: str | None = None, values: dict | None = None) -> dict:
    """A copy of `state` after a retrain round: answers stored, unanswered pending songs skipped.
    values: {song: (arousal, valence)} of the answers given as own values ("answer_values")."""
    new = json.loads(json.dumps(state))
    round_songs = list(state["pending"])
    skipped = [s for s in round_songs if s not in answers]
    named = {song: quadrant_name(q) for song, q in answers.items()}
    new["answers"].update(named)
    values = {song: [float(a), float(v)] for song, (a, v) in (values or {}).items()}
    if values:
        new.setdefault("answer_values", {}).update(values)
    new["asked"].extend(round_songs)
    new["skipped"].extend(skipped)
    new["pending"] = []
    new["iteration"] = int(state["iteration"]) + 1
    new["committee"] = committee_name
    new["history"].append({
        "round": new["iteration"],
        "asked": round_songs,
        "asked_at": state.get("pending_since"),
        "answers": named,
        "skipped": skipped,
        "answered_at": when or now_iso(),
        "update": update,
        "n_windows": int(n_windows),
        **({"values": values} if values else {}),
        # the query strategy that chose the round (get_hard_tracks --strategy; mc users)
        **({"strategy": state["pending_strategy"]} if state.get("pending_strategy") else {}),
        # the candidate sample it ranked (get_hard_tracks --candidates), when it was a sample
        **({"candidates": state["pending_candidates"]} if state.get("pending_candidates") else {}),
    })
    new.pop("pending_since", None)
    new.pop("pending_strategy", None)
    new.pop("pending_candidates", None)
    return new


def record_recommendations(state: dict, group: str, picks: dict, when: str | None = None) -> dict:
    new = json.loads(json.dumps(state))
    new["recommended"].append({"group": group, "time": when or now_iso(), "songs": picks})
    return new


def recommended_songs(state: dict) -> set:
    return {s for entry in state.get("recommended", []) for s in entry["songs"].values() if s}
