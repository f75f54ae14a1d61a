"""get_hard_tracks reuses a saved committee's cached song probabilities on an unchanged pool."""
import numpy as np

from test_loop_support import call_ok, loop_assets, loop_env  # noqa: F401
from trompa_mer import loop


def test_second_user_reads_the_cached_pool_scores(loop_env, monkeypatch):
    env = loop_env
    call_ok(env, "create_user.py", "-i", "first", "-m", "mc")
    call_ok(env, "create_user.py", "-i", "second", "-m", "mc")
    calls = []
    real = loop.pool_song_proba
    monkeypatch.setattr(loop, "pool_song_proba", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = call_ok(env, "get_hard_tracks.py", "-i", "first", "-q", "3").stdout.split()
    assert calls == [1]
    cache_files = list((env["feats"] / ".song_proba_cache").glob("*.npy"))
    assert len(cache_files) == 1
    # same default committee, same pool: no scoring, same ranking
    second = call_ok(env, "get_hard_tracks.py", "-i", "second", "-q", "3").stdout.split()
    assert calls == [1] and second == first
    # after a retrain the user's committee differs: it is scored (and cached) again
    answers = {song: "Q1" for song in first}
    import json
    call_ok(env, "retrain_model.py", "-i", "first", "-a", json.dumps(answers))
    call_ok(env, "get_hard_tracks.py", "-i", "first", "-q", "3")
    assert calls == [1, 1]
    assert len(list((env["feats"] / ".song_proba_cache").glob("*.npy"))) == 2
    cached = np.load(cache_files[0])
    # the cached values are the default committee's song probabilities on the pool
    from trompa_mer.committee import Committee
    from trompa_mer.pool import load_pool

    expected = Committee.load(env["dir"] / "pretrained").song_proba(load_pool(env["feats"]))
    np.testing.assert_allclose(cached, expected, rtol=0, atol=1e-12)
