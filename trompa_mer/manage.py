"""Listener management (manage_users.py): list, show, export, undo, delete, collect garbage.

The user folder's layout and its locks stay in trompa_mer.users; this module reads states and
shapes what the commands print or write.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from . import atomic
from .errors import MERError
from .scales import INTERNAL, Scale
from .users import UserStore, validate_user_id

EXPORT_FORMATS = ("csv", "json")
EXPORT_COLUMNS = ("song", "quadrant", "arousal", "valence", "round", "answered_at")


def _members_in(manifest_path: Path) -> int:
    """How many members a committee (or crowd) manifest lists; read without verifying the
    files (a listing, not a load)."""
    members = atomic.read_json_object(manifest_path).get("members")
    if not isinstance(members, list):
        raise MERError(f"{manifest_path}: field 'members': expected a list")
    return len(members)


def list_users(users_dir, lock_timeout: float = 1.0) -> list[dict]:
    """One row per user: id, mode, balanced, round, answers, pending, committee size (members of
    the current committee, crowd-aware members included), created; a user whose folder cannot
    be read, or who stays busy for `lock_timeout` seconds (a retrain running), gets the reason
    in "problem" instead. Each user is read under their shared lock, as predict reads."""
    from .committee import CROWD_LAYOUT, MANIFEST

    store = UserStore(users_dir)
    rows = []
    for user_id in store.user_ids():
        try:
            with store.lock(user_id, lock_timeout, shared=True):
                state = store.read_state(user_id)
                size = _members_in(store.committee_dir(user_id, state) / MANIFEST)
                if state.get("crowd"):
                    size += _members_in(store.user_dir(user_id) / state["crowd"] / CROWD_LAYOUT.manifest)
            rows.append({"user_id": user_id, "mode": state["mode"], "balanced": bool(state.get("balanced")),
                         "round": state["iteration"], "answers": len(state.get("answers", {})),
                         "pending": len(state["pending"]), "members": size, "created": state.get("created")})
        except (MERError, OSError) as err:
            rows.append({"user_id": user_id, "problem": str(err)})
    return rows


def _state(users_dir, user_id, lock_timeout) -> dict:
    store = UserStore(users_dir)
    validate_user_id(user_id)
    store.refuse_unknown(user_id)
    with store.lock(user_id, lock_timeout, shared=True):
        return store.read_state(user_id)


def user_history(users_dir, user_id, lock_timeout: float = 60.0) -> dict:
    """The user's rounds as the state records them (history), plus what is pending now."""
    state = _state(users_dir, user_id, lock_timeout)
    return {"user_id": user_id, "mode": state["mode"], "balanced": bool(state.get("balanced")),
            "created": state.get("created"), "round": state["iteration"],
            "answers": len(state.get("answers", {})), "skipped": len(state.get("skipped", [])),
            "pending": list(state["pending"]), "pending_since": state.get("pending_since"),
            "history": state.get("history", []), "recommended": state.get("recommended", [])}


def answer_rows(state: dict, scale: Scale = INTERNAL) -> list[dict]:
    """Every answer of a state, in the order given: song, quadrant, arousal and valence (on
    `scale`; None for a quadrant-only answer), the round and when it was answered."""
    from .users import stored_answers
    from .quadrants import quadrant_name

    quadrants, values = stored_answers(state)
    rows, seen = [], set()
    for entry in state.get("history", []):
        for song in entry.get("answers", {}):
            if song in quadrants and song not in seen:
                seen.add(song)
                rows.append((song, entry.get("round"), entry.get("answered_at")))
    rows += [(song, None, None) for song in quadrants if song not in seen]  # no history entry
    out = []
    for song, round_no, when in rows:
        pair = values.get(song)
        out.append({"song": song, "quadrant": quadrant_name(quadrants[song]),
                    "arousal": None if pair is None else scale.from_internal(pair[0]),
                    "valence": None if pair is None else scale.from_internal(pair[1]),
                    "round": round_no, "answered_at": when})
    return out


def export_text(rows: list[dict], fmt: str) -> str:
    """The rows as CSV (EXPORT_COLUMNS, empty cells for no value) or a JSON list."""
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else (repr(row[k]) if isinstance(row[k], float) else row[k])
                         for k in EXPORT_COLUMNS})
    return buffer.getvalue()


def export_format(output, fmt: str | None) -> str:
    """--format, else the output file's suffix (.csv, .json), else CSV."""
    if fmt is not None:
        if fmt not in EXPORT_FORMATS:
            raise MERError(f"--format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        return fmt
    if output in (None, "-"):
        return "csv"
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in EXPORT_FORMATS:
        raise MERError(f"{output}: expected a .csv or .json file name (or --format csv|json)")
    return suffix


def export_answers(users_dir, user_id, output=None, fmt: str | None = None, scale: Scale | None = None,
                   lock_timeout: float = 60.0) -> dict:
    """The user's answers as CSV or JSON (export_text), values on `scale` (default -1..1),
    written to `output` (atomically; its folder must exist) or returned as text for stdout
    (output None or '-')."""
    scale = scale or INTERNAL
    fmt = export_format(output, fmt)
    if output not in (None, "-"):
        atomic.require_folder_of(output)
    state = _state(users_dir, user_id, lock_timeout)
    rows = answer_rows(state, scale)
    text = export_text(rows, fmt)
    if output not in (None, "-"):
        atomic.write_text(output, text)
    return {"user_id": user_id, "answers": len(rows), "format": fmt, "text": text,
            "output": None if output in (None, "-") else str(output)}


def undo_round(users_dir, user_id, lock_timeout: float = 60.0) -> dict:
    return UserStore(users_dir).undo(user_id, lock_timeout)


def delete_user(users_dir, user_id, lock_timeout: float = 60.0) -> dict:
    """Delete the user's folder, then collect the shared blobs nobody refers to any more. A
    collection that cannot run (busy store, unreadable manifest) leaves the blobs and says why
    in "garbage_error"; the user is deleted either way."""
    store = UserStore(users_dir)
    result = store.delete(user_id, lock_timeout)
    try:
        result["garbage"] = store.collect_garbage(lock_timeout)
    except MERError as err:
        result["garbage_error"] = str(err)
    return result


def collect_garbage(users_dir, lock_timeout: float = 60.0) -> dict:
    return UserStore(users_dir).collect_garbage(lock_timeout)

