"""One command's hold on one user (UserStore.session): the lock taken once, the state read
once, the committee loaded once, a change committed once; what the loop verbs do through it."""
import json

import pytest

from test_loop_support import TEST_USER, loop_assets, loop_env  # noqa: F401
from trompa_mer import atomic, loop
from trompa_mer.committee import Committee
from trompa_mer.errors import MERError
from trompa_mer.users import UserStore


def _user(env, user=TEST_USER):
    loop.create_user(user, "mc", env["users"], env["dir"] / "pretrained",
                     annotations_path=env["dir"] / "data" / "annotations.csv", feats_dir=env["feats"])
    return user


def _count(monkeypatch, owner, name):
    calls = []
    original = getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls


def test_a_retrain_locks_reads_loads_and_commits_once(loop_env, monkeypatch):
    env = loop_env
    _user(env)
    asked = loop.get_hard_tracks(TEST_USER, 4, env["users"], env["feats"])["songs"]
    locks = _count(monkeypatch, atomic, "flock")
    reads = _count(monkeypatch, UserStore, "read_state")
    loads = _count(monkeypatch, Committee, "load")
    writes = _count(monkeypatch, UserStore, "write_state")
    saves = _count(monkeypatch, UserStore, "save_committee")
    loop.retrain(TEST_USER, json.dumps({s: "Q2" for s in asked}), env["users"], env["feats"], update="batch")
    user_locks = [c for c in locks if str(c[0]).endswith(f"{TEST_USER.lower()}.lock")]
    assert len(user_locks) == 1 and len(reads) == 1 and len(writes) == 1 and len(saves) == 1
    # the user's committee once, and the saved one read back once before the state names it
    assert len(loads) == 2
    state = json.loads((env["users"] / TEST_USER / "state.json").read_text())
    assert state["iteration"] == 1 and state["committee"] == "committee-0001"


def test_the_session_loads_each_committee_once_and_forgets_them_on_commit(loop_env):
    env = loop_env
    _user(env)
    store = UserStore(env["users"])
    with store.session(TEST_USER) as session:
        current = session.committee()
        assert session.committee() is current
        base = session.committee(base=True)
        assert base is not current and session.committee(base=True) is base
        assert session.committee_dir == env["users"] / TEST_USER / "committee-0000"
        assert session.state_path == env["users"] / TEST_USER / "state.json"
        assert session.user_dir == env["users"] / TEST_USER
        state = dict(session.state, pending=["x"])
        written = session.commit(state)
        assert written == state and session.state == state
        assert session.committee() is not current  # read again: the state may name another folder
    assert store.read_state(TEST_USER)["pending"] == ["x"]


def test_a_read_only_session_shares_the_lock_and_cannot_commit(loop_env):
    env = loop_env
    _user(env)
    store = UserStore(env["users"])
    with store.session(TEST_USER, shared=True) as reader:
        with store.session(TEST_USER, shared=True) as other:  # a second reader is let in
            assert other.state == reader.state
        with pytest.raises(MERError, match="user 'alice'"):
            with store.session(TEST_USER, lock_timeout=0.1):
                pass
        with pytest.raises(MERError, match="exclusive lock"):
            reader.commit(dict(reader.state))
    assert store.read_state(TEST_USER) == reader.state


def test_an_exclusive_session_tidies_first_a_shared_one_never(loop_env):
    env = loop_env
    _user(env)
    store = UserStore(env["users"])
    leftover = env["users"] / TEST_USER / "committee-0001"  # an uncommitted retrain's folder
    leftover.mkdir()
    with store.session(TEST_USER, shared=True):
        pass
    assert leftover.exists()
    with store.session(TEST_USER):
        assert not leftover.exists()


def test_a_commit_whose_committee_does_not_save_changes_nothing(loop_env, monkeypatch):
    env = loop_env
    _user(env)
    store = UserStore(env["users"])
    before = (env["users"] / TEST_USER / "state.json").read_bytes()

    def broken(self, user_id, committee, iteration):
        raise MERError("disk full")

    monkeypatch.setattr(UserStore, "save_committee", broken)
    with store.session(TEST_USER) as session:
        with pytest.raises(MERError, match="disk full"):
            session.commit(dict(session.state, iteration=1, committee="committee-0001"), session.committee())
    assert (env["users"] / TEST_USER / "state.json").read_bytes() == before


def test_an_unknown_user_is_refused_before_any_lock_file(loop_env):
    env = loop_env
    store = UserStore(env["users"])
    with pytest.raises(MERError, match="user id"):
        with store.session("../x"):
            pass
    with pytest.raises(MERError, match="no such user"):
        with store.session("nobody"):
            pass


def test_base_is_the_committee_the_user_was_created_with(loop_env, monkeypatch):
    env = loop_env
    _user(env)
    asked = loop.get_hard_tracks(TEST_USER, 4, env["users"], env["feats"])["songs"]
    loop.retrain(TEST_USER, json.dumps({s: "Q3" for s in asked}), env["users"], env["feats"], update="batch")
    loads = _count(monkeypatch, Committee, "load")
    with UserStore(env["users"]).session(TEST_USER, shared=True) as session:
        session.committee(base=True)
        session.committee()
    assert [c[0].name for c in loads] == ["base-committee", "committee-0001"]


def test_a_commit_with_a_committee_removes_the_round_before_the_previous_at_once(loop_env):
    env = loop_env
    _user(env)
    folder = env["users"] / TEST_USER
    for round_ in (1, 2):
        with UserStore(env["users"]).session(TEST_USER) as session:
            committee = session.committee()
            state = dict(session.state, iteration=round_, committee=f"committee-{round_:04d}")
            session.commit(state, committee)
            # inside the same session: the round before the previous is gone, the previous kept
            kept = sorted(p.name for p in folder.glob("committee-*"))
            assert kept == (["committee-0000", "committee-0001"] if round_ == 1 else
                            ["committee-0001", "committee-0002"])


def test_the_session_reads_the_users_consensus_and_crowd_table(loop_env, monkeypatch):
    env = loop_env
    loop.create_user("hcuser", "hc", env["users"], env["dir"] / "pretrained",
                     annotations_path=env["dir"] / "data" / "annotations.csv", feats_dir=env["feats"])
    store = UserStore(env["users"])
    tables = []
    monkeypatch.setattr(UserStore, "read_crowd_table", lambda self, user_id: tables.append(user_id) or "table")
    with store.session("hcuser", shared=True) as session:
        consensus = session.read_consensus()
        assert session.read_crowd_table() == "table" and tables == ["hcuser"]
    assert consensus is not None and consensus.equals(store.read_consensus("hcuser"))
    assert session.consensus_path == env["users"] / "hcuser" / "consensus.csv"
