"""Issue 23 ("Nothing trusted that was not checked"), items 1, 2 and 9 (part), through the scripts.

1. An admin moves a user folder, or the shared store `models/users/.shared`, to another disk and
   links it back: every later command works (the store's path in a manifest is recorded as the
   folders are named, never resolved through the links), and a retrain verifies the committee it
   saved before the state names it and before the previous one is removed.
2. One user acting as another: a user folder that is a link to another user's folder, or a
   `base-committee` link into another user's folder, is refused; nothing of any user changes.
9. A full disk is one `error:` line naming the path; an answer that is a 5001-digit number names
   the file and the song; abandoned `.tmp-<id>-*` folders of killed creates are removed by any
   later create; ids that differ only in letter case share one lock.

Every refusal: exit status 1, one `error:` line, and no file of any user changed (the models
tree, links followed, hashed before and after).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_loop_support import (ROOT, TEST_USER, assert_refused, call, call_ok, loop_assets,  # noqa: F401
                               loop_env, read_state, run)
from trompa_mer.committee import Committee
from trompa_mer.users import UserStore


def tree_hashes(*roots) -> dict:
    """sha256 of every file under `roots`, links followed (a linked user folder is hashed where it
    lives), the lock files left out (any command that waits for a user creates its lock file)."""
    out = {}
    for root in roots:
        for folder, _dirs, files in os.walk(root, followlinks=True):
            for name in files:
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, root)
                if ".locks" in rel.split(os.sep):
                    continue
                with open(path, "rb") as handle:
                    out[f"{root}:{rel}"] = hashlib.sha256(handle.read()).hexdigest()
    return out


def refused_unchanged(env, result, *needles):
    """Exit status 1, one `error:` line naming `needles`, no traceback (the caller compares the
    models tree hashed before and after)."""
    line = assert_refused(result, *needles)
    assert "Traceback" not in result.stderr
    return line


def _models(env):
    return env["dir"] / "models"


def _move_and_link(path, disk):
    """What an admin does: move `path` to another disk, link it back under its old name."""
    disk.mkdir(parents=True, exist_ok=True)
    target = disk / path.name
    shutil.move(str(path), str(target))
    os.symlink(target, path)
    return target


def _answers(songs):
    return {song: f"Q{1 + int(song[-2:]) % 4}" for song in songs}


def _predict(env, user, out="p.json"):
    return run(env, "predict_emotion.py", "-i", env["feats"] / "song01.csv", "-o", env["dir"] / out, "-u", user)


# --- item 1: linked user folder / linked shared store ------------------------------------------
def test_a_user_folder_moved_to_another_disk_and_linked_back_keeps_working(loop_env, tmp_path):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    moved = _move_and_link(env["users"] / TEST_USER, tmp_path / "disk2")
    result = run(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(_answers(songs)))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((moved / "committee-0001" / "committee.json").read_text())
    assert manifest.get("store") in (None, "../../.shared")  # as the folders are named, not resolved
    assert (moved / "committee-0000" / "committee.json").is_file()  # the previous round's, for undo
    # every later command works, batch and cumulative, and the committee loads where it lives
    songs = run(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2")
    assert songs.returncode == 0, songs.stderr
    result = run(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(_answers(songs.stdout.split())),
                 "--update", "batch")
    assert result.returncode == 0, result.stderr
    assert _predict(env, TEST_USER).returncode == 0
    assert read_state(env)["iteration"] == 2 and (env["users"] / TEST_USER).is_symlink()
    Committee.load(env["users"] / TEST_USER / "committee-0002")  # through the link, as the commands do
    call_ok(env, "get_recommendations.py", "-i", TEST_USER, "-r", "g2")


def test_a_shared_store_moved_to_another_disk_and_linked_back_keeps_working(loop_env, tmp_path):
    env = loop_env
    call_ok(env, "create_user.py", "-i", "carol", "-m", "mc")
    _move_and_link(env["users"] / ".shared", tmp_path / "disk2")
    created = run(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    assert created.returncode == 0, created.stderr
    for folder in ("committee-0000", "base-committee"):
        manifest = json.loads((env["users"] / TEST_USER / folder / "committee.json").read_text())
        assert manifest["store"] == "../../.shared"
    for user in (TEST_USER, "carol"):  # the user created through the link and the one before it
        songs = run(env, "get_hard_tracks.py", "-i", user, "-q", "2")
        assert songs.returncode == 0, songs.stderr
        result = run(env, "retrain_model.py", "-i", user, "-a", json.dumps(_answers(songs.stdout.split())))
        assert result.returncode == 0, result.stderr
        assert _predict(env, user).returncode == 0
    assert read_state(env)["iteration"] == 1


def test_a_saved_committee_that_does_not_load_is_never_committed(loop_env, monkeypatch):
    """The class behind item 1's data loss: whatever makes the committee just saved unreadable
    (here its manifest names a store that is not there, as the resolved paths did), the retrain
    is refused before the state names it, and the previous committee stays."""
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    before = tree_hashes(_models(env))
    real_save = Committee.save

    def save_then_damage(self, directory, *args, **kwargs):
        saved = real_save(self, directory, *args, **kwargs)
        path = Path(directory) / "committee.json"
        manifest = json.loads(path.read_text())
        manifest["store"] = "../../../elsewhere/.shared"
        path.write_text(json.dumps(manifest))
        return saved

    monkeypatch.setattr(Committee, "save", save_then_damage)
    result = call(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(_answers(songs)))
    refused_unchanged(env, result, "committee-0001", "nothing was changed")
    assert tree_hashes(_models(env)) == before
    monkeypatch.undo()
    call_ok(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(_answers(songs)))
    assert read_state(env)["iteration"] == 1


# --- item 2: one user acting as another --------------------------------------------------------
@pytest.mark.parametrize("script", ["get_hard_tracks.py", "retrain_model.py", "predict_emotion.py",
                                    "get_recommendations.py", "create_user.py"])
def test_a_user_folder_linked_to_another_users_folder_is_refused(loop_env, script):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    os.symlink(TEST_USER, env["users"] / "mallory")
    before = tree_hashes(_models(env))
    args = {"get_hard_tracks.py": ["-i", "mallory", "-q", "2"],
            "retrain_model.py": ["-i", "mallory", "-a", json.dumps(_answers(songs[:1]))],
            "predict_emotion.py": ["-i", env["feats"] / "song01.csv", "-o", env["dir"] / "p.json",
                                   "-u", "mallory"],
            "get_recommendations.py": ["-i", "mallory", "-r", "g2"],
            "create_user.py": ["-i", "mallory", "-m", "mc", "--exist-ok"]}[script]
    refused_unchanged(env, run(env, script, *args), "mallory", TEST_USER)
    assert tree_hashes(_models(env)) == before
    assert not (env["dir"] / "p.json").exists()


def test_two_retrains_through_a_linked_id_cannot_both_win(loop_env):
    """`ln -s alice mallory`, then a retrain as each at once: alice's commits, mallory's is
    refused (it used to take its own lock and overwrite alice's round)."""
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    os.symlink(TEST_USER, env["users"] / "mallory")
    answers = {TEST_USER: {songs[0]: "Q1"}, "mallory": {songs[1]: "Q3"}}
    procs = {user: subprocess.Popen([sys.executable, str(ROOT / "retrain_model.py"), "-i", user, "-a",
                                     json.dumps(a)], env=env["env"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for user, a in answers.items()}
    results = {user: p.communicate(timeout=300) for user, p in procs.items()}
    assert procs[TEST_USER].returncode == 0, results[TEST_USER]
    assert procs["mallory"].returncode == 1, results["mallory"]
    lines = results["mallory"][1].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "mallory" in lines[0], lines
    state = read_state(env)
    assert state["iteration"] == 1 and state["history"][0]["answers"] == answers[TEST_USER]


@pytest.mark.parametrize("folder", ["base-committee", "committee-0000"])
@pytest.mark.parametrize("script", ["retrain_model.py", "get_hard_tracks.py", "predict_emotion.py"])
def test_a_committee_folder_linked_into_another_users_folder_is_refused(loop_env, folder, script):
    env = loop_env
    for user in (TEST_USER, "carol"):
        call_ok(env, "create_user.py", "-i", user, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    link = env["users"] / TEST_USER / folder
    shutil.rmtree(link)
    os.symlink(os.path.join("..", "carol", folder), link)
    before = tree_hashes(_models(env))
    args = {"retrain_model.py": ["-i", TEST_USER, "-a", json.dumps(_answers(songs))],
            "get_hard_tracks.py": ["-i", TEST_USER, "-q", "2"],
            "predict_emotion.py": ["-i", env["feats"] / "song01.csv", "-o", env["dir"] / "p.json",
                                   "-u", TEST_USER]}[script]
    refused_unchanged(env, run(env, script, *args), folder, "link")
    assert tree_hashes(_models(env)) == before


# --- item 9 ------------------------------------------------------------------------------------
BIG = "1" + "0" * 5000  # json.loads refuses to convert it (Python's 4300-digit limit)


@pytest.mark.parametrize("answer,needle", [
    (BIG, "5001-digit"),
    ('{"arousal": %s, "valence": 0}' % BIG, "5001-digit"),
    ('{"arousal": -%s, "valence": 0.5}' % BIG, "5001-digit"),
    ('{"arousal": 2, "valence": 0}', "outside -1..1"),
    ('{"arousal": 0.5, "valence": -1.5}', "outside -1..1"),
])
def test_an_out_of_range_answer_names_the_file_and_the_song(loop_env, answer, needle):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    path = env["dir"] / "answers.json"
    body = json.dumps({songs[0]: "Q1", songs[1]: "PLACEHOLDER"})
    path.write_text(body.replace('"PLACEHOLDER"', answer))
    before = tree_hashes(_models(env))
    line = refused_unchanged(env, run(env, "retrain_model.py", "-i", TEST_USER, "-a", path),
                             str(path), songs[1], needle)
    assert len(line) < 600, line  # the number is described, not printed
    assert "unexpected" not in line
    assert tree_hashes(_models(env)) == before


def test_abandoned_create_folders_are_removed_by_any_later_create(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", "carol", "-m", "mc")
    users = env["users"]
    abandoned = users / ".tmp-bob-0123abcd"  # a create of bob killed half-way: its lock is free
    in_progress = users / ".tmp-dan-x-89abcdef"  # a create of dan-x still running: it holds its lock
    for folder in (abandoned, in_progress):
        (folder / "committee-0000").mkdir(parents=True)
        (folder / "committee-0000" / "committee.json").write_text("{}")
    not_ours = users / ".tmp-notes"
    not_ours.mkdir()
    holder = UserStore(users)
    with holder.lock("dan-x"):
        result = run(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    assert result.returncode == 0, result.stderr
    assert not abandoned.exists()
    assert in_progress.is_dir() and not_ours.is_dir()
    assert read_state(env)["user_id"] == TEST_USER


def test_ids_differing_only_in_case_share_one_lock(tmp_path):
    store = UserStore(tmp_path)
    with store.lock("CaseN"):
        with pytest.raises(Exception, match="busy"):
            with store.lock("casen", timeout=0.2):
                pass


def test_two_creates_of_case_twins_at_once_let_one_through(loop_env, monkeypatch):
    """`CaseN` and `caseN` created at the same moment (threads here, each with its own lock
    file descriptor as two processes would have; the copy slowed so both are inside create at
    once): exactly one is created."""
    from trompa_mer import loop, users

    env = loop_env
    real = users.share_folder

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(users, "share_folder", slow)
    outcomes = {}

    def create(uid):
        try:
            loop.create_user(uid, "mc", env["users"], env["dir"] / "pretrained")
            outcomes[uid] = "created"
        except Exception as err:  # noqa: BLE001 - the refusal is what is checked
            outcomes[uid] = f"{type(err).__name__}: {err}"

    threads = [threading.Thread(target=create, args=(uid,)) for uid in ("CaseN", "caseN")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(o == "created" for o in outcomes.values()) == [False, True], outcomes
    assert [o for o in outcomes.values() if o != "created"][0].startswith("MERError"), outcomes
    assert len([p for p in env["users"].iterdir() if not p.name.startswith(".")]) == 1


DISK_FULL = r"""
set -e
mount -t tmpfs -o size={size}k tmpfs "$SMALL"
cp -a "$SRC/models" "$SMALL/models"
python=$1
hash() {{ (cd "$SMALL/models" && find . -path ./users/.locks -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); }}
before=$(hash)
# leave {free} KB free on the small disk
avail=$(df -k --output=avail "$SMALL" | tail -1)
fill=$((avail - {free}))
if [ $fill -gt 0 ]; then dd if=/dev/zero of="$SMALL/filler" bs=1k count=$fill status=none 2>/dev/null || true; fi
set +e
MER_MODELS_DIR="$SMALL/models" $python "$ROOT/retrain_model.py" -i {user} -a "$ANSWERS" --update {update} 2>"$SMALL/err"
echo "rc=$?"
echo "stderr=$(cat "$SMALL/err")"
after=$(hash)
[ "$before" = "$after" ] && echo "unchanged=yes" || echo "unchanged=no"
rm -f "$SMALL/filler"
MER_MODELS_DIR="$SMALL/models" $python "$ROOT/retrain_model.py" -i {user} -a "$ANSWERS" --update {update} >/dev/null 2>"$SMALL/err2"
echo "rc2=$?"
echo "stderr2=$(cat "$SMALL/err2")"
"""


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null "
                            "|| mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.mark.parametrize("update", ["cumulative", "batch"])
def test_a_full_disk_during_a_retrain_is_one_line_naming_the_path(loop_env, tmp_path, update):
    """A real full disk (a tmpfs mounted in a user namespace holding the models tree, filled but
    for 64 KB): the retrain ends with one `error:` line naming a path under the models folder
    and "no space left", nothing of the user changed, and the retrain succeeds once there is room."""
    if not _unshare_works():
        pytest.skip("needs unprivileged user namespaces (unshare -rm) to mount a small tmpfs")
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "3").stdout.split()
    answers = env["dir"] / "answers.json"
    answers.write_text(json.dumps(_answers(songs)))
    small = tmp_path / "small"
    small.mkdir()
    size_kb = max(2048, int(sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(_models(env))
                                for f in fs) / 1024) + 1024)
    script = DISK_FULL.format(size=size_kb, free=64, user=TEST_USER, update=update)
    environ = dict(env["env"], SMALL=str(small), SRC=str(env["dir"]), ROOT=str(ROOT), ANSWERS=str(answers))
    out = subprocess.run(["unshare", "-rm", "bash", "-c", script, "bash", sys.executable], env=environ,
                         capture_output=True, text=True, timeout=600)
    fields = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert fields.get("rc") == "1", (out.stdout, out.stderr)
    lines = [line for line in fields["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), fields["stderr"]
    assert "no space left" in lines[0].lower() and str(small / "models") in lines[0], lines[0]
    assert "xgboost" not in lines[0].lower() and "unexpected" not in lines[0], lines[0]
    assert fields["unchanged"] == "yes"
    assert fields["rc2"] == "0", fields.get("stderr2")


def test_a_full_copy_users_next_round_is_deduplicated_into_the_shared_store(loop_env):
    """Item 9e, what docs/loop.md says: a user folder of the layout before the store (full
    copies) is not migrated, but its next round refers to the blobs `.shared` holds (there once
    any user was created from the same committee); only what the store lacks is saved whole."""
    env = loop_env
    call_ok(env, "create_user.py", "-i", "carol", "-m", "mc")  # puts the committee into .shared
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    for name in ("committee-0000", "base-committee"):  # what the code before the store wrote
        folder = env["users"] / TEST_USER / name
        shutil.rmtree(folder)
        shutil.copytree(env["dir"] / "pretrained", folder)
    songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
    for update in ("batch", "cumulative"):
        if update == "cumulative":
            songs = call_ok(env, "get_hard_tracks.py", "-i", TEST_USER, "-q", "2").stdout.split()
        result = run(env, "retrain_model.py", "-i", TEST_USER, "-a", json.dumps(_answers(songs)), "--update", update)
        assert result.returncode == 0, result.stderr
        state = read_state(env)
        manifest = json.loads((env["users"] / TEST_USER / state["committee"] / "committee.json").read_text())
        assert manifest["store"] == "../../.shared" and manifest["stored"], update
        assert any("part" in spec for spec in manifest["stored"].values()), update  # an XGBoost member's rounds
    assert "stored" not in json.loads((env["users"] / TEST_USER / "base-committee" / "committee.json").read_text())


def test_a_library_writer_failing_on_a_full_disk_is_a_disk_full_error_naming_the_file(tmp_path, monkeypatch):
    """In-process, the class behind 9a: a writer that fails its own way (XGBoost: a C++ check with
    a stack trace) while the disk is (nearly) full becomes OSError ENOSPC naming the file asked for;
    an OSError without a file name gets it; otherwise the error stays what it was; no temporary
    file is left in any case."""
    import errno

    from trompa_mer import atomic
    from trompa_mer.errors import MERError

    target = tmp_path / "xgb_0.ubj"

    def fail_with(exc):
        with atomic.atomic_path(target) as tmp:
            Path(tmp).write_bytes(b"half")
            raise exc

    monkeypatch.setattr(atomic, "disk_nearly_full", lambda folder: True)
    with pytest.raises(OSError) as err:
        fail_with(ValueError("Check failed: FileStream.Write incomplete Stack trace: [bt] (0) ..."))
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    with pytest.raises(MERError, match="its own refusal"):  # a refusal is never taken for a full disk
        fail_with(MERError("its own refusal"))
    monkeypatch.setattr(atomic, "disk_nearly_full", lambda folder: False)
    with pytest.raises(ValueError, match="FileStream"):
        fail_with(ValueError("Check failed: FileStream.Write incomplete"))
    with pytest.raises(OSError) as err:
        fail_with(OSError(errno.ENOSPC, "No space left on device"))
    assert err.value.filename == str(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert atomic.disk_nearly_full(tmp_path / "nosuch") is False


def test_a_full_disk_while_a_folder_is_saved_names_the_file_where_it_was_going(tmp_path):
    """save_new_folder writes into a temporary folder that is gone when the error is shown: the
    error names the file as it would have been saved; an error about another file is kept."""
    import errno

    from trompa_mer.checksummed import save_new_folder

    import re

    from trompa_mer.users import TEMPORARY

    destination = tmp_path / "users" / "bob" / "committee-0001"  # its parents are made

    def full(tmp):
        # a name the next writer's tidy recognizes as a leftover
        assert re.fullmatch(r"\.committee-0001\.[^/]+\.tmp", Path(tmp).name) and TEMPORARY.fullmatch(Path(tmp).name)
        (Path(tmp) / "gnb_0.skops").write_bytes(b"x")
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(tmp) / "xgb_0.ubj"))

    with pytest.raises(OSError) as err:
        save_new_folder(destination, full)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(destination / "xgb_0.ubj")
    assert err.value.strerror == "No space left on device"

    def broken(tmp):
        (Path(tmp) / "gnb_0.skops").write_bytes(b"x")
        raise ValueError("not an OSError")

    with pytest.raises(ValueError):
        save_new_folder(destination, broken)
    elsewhere = str(tmp_path / "other.json")

    def other(tmp):
        raise OSError(errno.EACCES, "Permission denied", elsewhere)

    with pytest.raises(OSError) as err:
        save_new_folder(destination, other)
    assert err.value.errno == errno.EACCES and err.value.filename == elsewhere
    assert sorted(p.name for p in (tmp_path / "users" / "bob").iterdir()) == []  # no temporary folder left


def test_write_manifest_on_its_own_shares_what_the_store_holds_and_drops_stale_fields(tmp_path):
    """write_manifest called without files shared beforehand (as encoder.py calls it): the files
    are checksummed, those the store holds become references with the store's path, and a
    store/stored field of the manifest given is never carried over."""
    import hashlib

    from trompa_mer.checksummed import BlobStore, write_manifest

    store = BlobStore(tmp_path / "users" / ".shared")
    digest = store.add(b"shared bytes")
    folder = tmp_path / "users" / "bob" / "committee-0001"
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"shared bytes")
    (folder / "b.bin").write_bytes(b"own bytes")
    stale = {"name": "x", "store": "../../old", "stored": {"z": {"blob": "0" * 64}}}
    plain = write_manifest(folder, "m.json", stale, ["b.bin"])
    assert "store" not in plain and "stored" not in plain
    assert plain["checksums"] == {"b.bin": hashlib.sha256(b"own bytes").hexdigest()}
    manifest = write_manifest(folder, "m.json", stale, ["a.bin", "b.bin"], store)
    assert manifest["store"] == "../../.shared" and manifest["stored"] == {"a.bin": {"blob": digest}}
    assert not (folder / "a.bin").exists() and (folder / "b.bin").is_file()
    assert json.loads((folder / "m.json").read_text()) == manifest


def test_a_create_killed_half_way_leaves_a_folder_the_next_create_removes(loop_env):
    """The real thing behind test_abandoned_create_folders_...: create_user.py SIGKILLed while its
    temporary folder exists; a create of another id removes it."""
    import signal

    env = loop_env
    users = env["users"]
    users.mkdir(parents=True)
    for attempt in range(8):
        proc = subprocess.Popen([sys.executable, str(ROOT / "create_user.py"), "-i", f"k{attempt}", "-m", "mc"],
                                env=env["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        caught = False
        while proc.poll() is None:
            if any(p.name.startswith(f".tmp-k{attempt}-") for p in users.iterdir()):
                proc.send_signal(signal.SIGKILL)
                caught = True
                break
            time.sleep(0.002)
        proc.wait()
        if caught and any(p.name.startswith(f".tmp-k{attempt}-") for p in users.iterdir()):
            break
    else:
        pytest.skip("every create finished before its temporary folder could be caught")
    result = run(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    assert result.returncode == 0, result.stderr
    assert [p.name for p in users.iterdir() if p.name.startswith(".tmp-")] == []


def test_an_os_error_without_an_errno_is_passed_on_as_it_is(tmp_path):
    from trompa_mer import atomic
    from trompa_mer.checksummed import save_new_folder

    with pytest.raises(OSError, match="^disk full \\(simulated\\)$"):
        with atomic.atomic_open(tmp_path / "a.json"):
            raise OSError("disk full (simulated)")

    def fail(tmp):
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="^disk full \\(simulated\\)$"):
        save_new_folder(tmp_path / "committee-0001", fail)
