"""Members on the musicnn tagger's song embeddings: the embedding cache, the member's verbs and
files, pre-training on a corpus with audio, and a whole round of the live loop through the
scripts (generated clips; the audio read through MER_AUDIO_DIR as for the CNN)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audio_loop_support import audio_loop_env, ok, run, write_audio_pool
from trompa_mer import tagger
from trompa_mer.errors import MERError
from trompa_mer.members import SongAudio

SR = 16000
TONES = (220.0, 880.0, 440.0, 1760.0)  # one pitch per quadrant
SONGS = [f"clip{i:02d}" for i in range(8)]
USER = "dora"

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def quadrant_of(song: str) -> int:
    return int(song[-2:]) % 4


def clip(song: str, seconds: float = 3.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + int(song[-2:]))
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.4 * np.sin(2 * np.pi * TONES[quadrant_of(song)] * t) + 0.05 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(autouse=True)
def fresh_memo():
    tagger._embeddings.clear()
    yield
    tagger._embeddings.clear()


def test_embedding_is_the_penultimate_mean_then_sd():
    from trompa_mer import musicnn

    samples = clip("clip01", seconds=7.0)
    pen = musicnn.patch_outputs(samples)["penultimate"]
    assert pen.shape == (2, 200)
    vector = tagger.song_embedding(samples)
    assert vector.shape == (tagger.EMBEDDING_SIZE,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector[:200], pen.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(vector[200:], pen.std(axis=0), rtol=1e-6, atol=1e-7)


def test_embed_caches_verified_files_and_recomputes_a_damaged_one(tmp_path, monkeypatch):
    source = {s: clip(s) for s in SONGS[:3]}
    first = tagger.embed(SONGS[:3], source, cache_dir=tmp_path)
    files = sorted((tmp_path).glob("musicnn-*/*.npy"))
    assert len(files) == 3 and all(f.with_suffix(".json").is_file() for f in files)
    # a second process (memo cleared) reads the cache instead of running the network
    tagger._embeddings.clear()
    calls = []
    monkeypatch.setattr(tagger, "song_embedding", lambda s: calls.append(1) or np.zeros(400, np.float32))
    np.testing.assert_array_equal(tagger.embed(SONGS[:3], source, cache_dir=tmp_path), first)
    assert not calls
    # a damaged file is one warning and a recompute, never used
    tagger._embeddings.clear()
    raw = bytearray(files[0].read_bytes())
    raw[200:208] = b"\0" * 8  # inside the mean half (one patch: the sd half is all zeros)
    files[0].write_bytes(bytes(raw))
    with pytest.warns(Warning, match="does not match its checksum"):
        again = tagger.embed(SONGS[:3], source, cache_dir=tmp_path)
    assert len(calls) == 1
    assert np.count_nonzero((again == 0).all(axis=1)) == 1


def test_audio_files_are_hashed_once_while_unchanged(tmp_path, monkeypatch):
    import soundfile

    from trompa_mer import cache_files
    from trompa_mer.audio_cache import AudioCache

    for song in SONGS[:2]:
        soundfile.write(tmp_path / f"{song}.wav", clip(song), SR)
    source = AudioCache.from_folder(tmp_path, tmp_path / "cache")
    first = tagger.embed(SONGS[:2], source)
    assert not list((tmp_path / "cache").glob("*.npy")), "no 16 kHz copies written for embeddings"
    hashed = []
    real = cache_files.sha256_path
    monkeypatch.setattr(cache_files, "sha256_path", lambda p: hashed.append(Path(p).name) or real(p))
    tagger._digests.clear()  # a new process: the folder's index says what is known
    tagger._embeddings.clear()
    np.testing.assert_array_equal(tagger.embed(SONGS[:2], source), first)
    assert hashed == []
    soundfile.write(tmp_path / "clip01.wav", clip("clip02"), SR)  # rewritten: hashed, recomputed
    tagger._digests.clear()
    again = tagger.embed(SONGS[:2], source)
    assert hashed == ["clip01.wav"]
    np.testing.assert_array_equal(again[0], first[0])
    assert not np.allclose(again[1], first[1])


def test_embed_keys_by_content_not_by_id(tmp_path):
    a = tagger.embed(["x"], {"x": clip("clip00")}, cache_dir=tmp_path)
    b = tagger.embed(["x"], {"x": clip("clip01")}, cache_dir=tmp_path)  # same id, other audio
    assert not np.allclose(a, b)


def test_member_fit_predict_update_save_load(tmp_path):
    from trompa_mer.registry import member_class

    assert member_class("musicnn") is tagger.MusicnnMember
    source = {s: clip(s) for s in SONGS}
    X = SongAudio(SONGS, source)
    y = np.array([quadrant_of(s) for s in SONGS])
    member = tagger.MusicnnMember().fit(X, y)
    proba = member.predict_proba(X)
    assert proba.shape == (len(SONGS), 4) and np.allclose(proba.sum(axis=1), 1)
    assert (proba.argmax(axis=1) == y).mean() >= 0.75  # four tones, well apart
    names = member.save(tmp_path / "m")
    loaded = tagger.MusicnnMember.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(X), proba, atol=1e-12)
    meta = json.loads((tmp_path / names[1]).read_text())
    assert meta["algorithm"] == "musicnn" and meta["input_kind"] == "audio"
    assert meta["embedding"]["signature"] == tagger.embedding_signature()
    before = loaded.predict_proba(X)
    loaded.update(SongAudio(SONGS[:2], source), y[[1, 0]])  # answers against the tones
    assert not np.allclose(loaded.predict_proba(X), before)


def test_member_refuses_other_inputs():
    with pytest.raises(MERError, match="expected SongAudio"):
        tagger.MusicnnMember().fit(np.zeros((4, 260), np.float32), np.arange(4))


def test_pretrain_with_audio_and_refused_without(tmp_path):
    from trompa_mer import pretrain
    from trompa_mer.datasets.generic import LabeledWindows

    rng = np.random.default_rng(0)
    songs = [f"clip{i:02d}" for i in range(16)]
    groups = np.repeat(songs, 4)
    y = np.array([quadrant_of(s) for s in groups])
    X = (rng.standard_normal((len(groups), 6)) + y[:, None]).astype(np.float32)
    data = LabeledWindows(X, y, groups, [f"f{i}" for i in range(6)],
                          audio={s: clip(s, seed=7) for s in songs})
    report, committee = pretrain.pretrain(data, ["sgd", "musicnn"], cv=2, progress=False)
    assert report["song"]["musicnn"]["f1_macro"][0] > 0.5  # [mean, sd] over the splits
    assert [m.algorithm for _, m in committee.members].count("musicnn") == 2
    with pytest.raises(MERError, match="no audio folder"):
        pretrain.pretrain(data._replace(audio=None), ["musicnn"], cv=2, progress=False)


# --- the live loop ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from trompa_mer.committee import Committee
    from trompa_mer.features import FEATURE_NAMES
    from trompa_mer.members import make_member

    base = tmp_path_factory.mktemp("tagger_loop")
    _, scaler, X, y = write_audio_pool(base, SONGS, lambda song: (clip(song), SR), quadrant_of)
    sgd = make_member("sgd").fit(X, y)
    source = {s: clip(s) for s in SONGS}
    musicnn = tagger.MusicnnMember().fit(SongAudio(SONGS, source), [quadrant_of(s) for s in SONGS])
    Committee([("sgd_0", sgd), ("musicnn_0", musicnn)], scaler, FEATURE_NAMES,
              {"corpus": "generated clips (test)"}).save(base / "committee")
    return base


@pytest.fixture
def env(assets, tmp_path):
    return audio_loop_env(assets, tmp_path)


def test_a_round_of_the_loop_with_musicnn_members(env):
    from trompa_mer.committee import Committee

    ok(env, "create_user.py", "-i", USER, "-m", "mc", "--committee", env["committee"])
    songs = json.loads(ok(env, "get_hard_tracks.py", "-i", USER, "-q", 3, "--json").stdout)
    assert len(songs) == 3 and set(songs) <= set(SONGS)
    # the embeddings were cached beside the decoded audio, once per song
    assert len(list((env["dir"] / "cache").rglob("musicnn-*/*.npy"))) == len(SONGS)
    answers = env["dir"] / "answers.json"
    answers.write_text(json.dumps({s: f"Q{(quadrant_of(s) + 1) % 4 + 1}" for s in songs}))
    state_dir = env["users"] / USER
    before = Committee.load(state_dir / json.loads((state_dir / "state.json").read_text())["committee"])
    ok(env, "retrain_model.py", "-i", USER, "-a", answers)
    state = json.loads((state_dir / "state.json").read_text())
    after = Committee.load(state_dir / state["committee"])
    assert state["iteration"] == 1
    source = {s: clip(s) for s in SONGS}
    old, new = dict(before.members)["musicnn_0"], dict(after.members)["musicnn_0"]
    assert not np.allclose(old.predict_proba(SongAudio(songs, source)), new.predict_proba(SongAudio(songs, source)))
    out = env["dir"] / "pred.json"
    ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "audio" / "clip02.wav", "-o", out, "-u", USER)
    result = json.loads(out.read_text())
    assert set(result["member_mean_probs"]) == {"sgd_0", "musicnn_0"}


def test_without_an_audio_folder_the_musicnn_members_are_skipped_and_kept(env):
    """No audio folder at all (MER_AUDIO_DIR unset, no <MER_DATA_DIR>/audio: a pool of feature
    CSVs only): ranking, retraining and recommending go on with the other members, each saying
    which members it skipped; the musicnn member is not updated (history "not_updated"), the
    answers are kept, and once the audio is back a cumulative retrain trains it on every answer
    so far. A folder MER_AUDIO_DIR names but that is not there is still refused."""
    import shutil

    from test_loop_support import assert_refused
    from trompa_mer.committee import Committee

    ok(env, "create_user.py", "-i", USER, "-m", "mc", "--committee", env["committee"])
    audio = env["dir"] / "data" / "audio"
    shutil.move(audio, env["dir"] / "kept_audio")
    assert_refused(run(env, "get_hard_tracks.py", "-i", USER, "-q", 3), str(audio), "MER_AUDIO_DIR")
    del env["env"]["MER_AUDIO_DIR"]  # the default, <MER_DATA_DIR>/audio, is not there
    ranked = ok(env, "get_hard_tracks.py", "-i", USER, "-q", 3, "--json")
    songs = json.loads(ranked.stdout)
    assert len(songs) == 3 and set(songs) <= set(SONGS)
    assert "note: member(s) musicnn_0 skipped: reads audio; no audio folder" in ranked.stderr
    assert "MER_AUDIO_DIR" in ranked.stderr
    answers = {s: f"Q{(quadrant_of(s) + 1) % 4 + 1}" for s in songs}
    state_dir = env["users"] / USER

    def committee():
        return Committee.load(state_dir / json.loads((state_dir / "state.json").read_text())["committee"])

    before = committee()
    retrained = ok(env, "retrain_model.py", "-i", USER, "-a", json.dumps(answers))
    assert "note: member(s) musicnn_0 skipped" in retrained.stderr and "not updated" in retrained.stderr
    state = json.loads((state_dir / "state.json").read_text())
    assert state["iteration"] == 1 and state["answers"] == answers
    assert state["history"][-1]["not_updated"] == ["musicnn_0"]
    after = committee()
    source = {s: clip(s) for s in SONGS}
    for name, changed in (("musicnn_0", False), ("sgd_0", True)):
        old, new = dict(before.members)[name], dict(after.members)[name]
        inputs = SongAudio(SONGS, source) if name == "musicnn_0" else np.zeros((2, 260), dtype=np.float32) + 0.5
        assert np.allclose(old.predict_proba(inputs), new.predict_proba(inputs)) is not changed, name
    playlists = env["dir"] / "data" / "playlists.csv"
    playlists.write_text("group,song\n" + "".join(f"g,{s}\n" for s in SONGS))
    recommended = ok(env, "get_recommendations.py", "-i", USER, "-r", "g", "--playlists", playlists, "--json")
    # the same note line as the other verbs (cli.skipped_note), not a warning
    assert "note: member(s) musicnn_0 skipped: reads audio; no audio folder" in recommended.stderr
    assert "warning" not in recommended.stderr and len(json.loads(recommended.stdout)) == 4
    # the audio back: the next (cumulative) round trains the musicnn member on every answer so far
    shutil.move(env["dir"] / "kept_audio", audio)
    more = json.loads(ok(env, "get_hard_tracks.py", "-i", USER, "-q", 2, "--json").stdout)
    retrained = ok(env, "retrain_model.py", "-i", USER, "-a",
                   json.dumps({s: f"Q{quadrant_of(s) + 1}" for s in more}))
    assert "skipped" not in retrained.stderr
    state = json.loads((state_dir / "state.json").read_text())
    assert "not_updated" not in state["history"][-1]
    assert not np.allclose(dict(before.members)["musicnn_0"].predict_proba(SongAudio(SONGS, source)),
                           dict(committee().members)["musicnn_0"].predict_proba(SongAudio(SONGS, source)))


def test_the_shipped_default_committee_reads_the_audio_and_goes_on_without_it(env):
    """A user of the shipped models/pretrained (xgb + musicnn): with the pool's audio every
    member scores the songs; without an audio folder the musicnn members are skipped with a note
    and the xgb members rank, retrain and predict alone."""
    import shutil

    from trompa_mer.committee import Committee
    from trompa_mer.pool import load_pool

    shipped = Path(__file__).resolve().parents[1] / "models" / "pretrained"
    environ = dict(env["env"], MER_PRETRAINED_DIR=str(shipped))
    env = dict(env, env=environ)
    ok(env, "create_user.py", "-i", USER, "-m", "mc")
    ranked = ok(env, "get_hard_tracks.py", "-i", USER, "-q", 2, "--json")
    assert "skipped" not in ranked.stderr
    assert len(list((env["dir"] / "cache").rglob("musicnn-*/*.npy"))) == len(SONGS)  # every member scored
    ok(env, "retrain_model.py", "-i", USER, "-a", json.dumps({s: f"Q{quadrant_of(s) + 1}" for s in json.loads(ranked.stdout)}))
    shutil.rmtree(env["dir"] / "data" / "audio")
    del env["env"]["MER_AUDIO_DIR"]  # a pool without audio: MER_AUDIO_DIR unset, no <MER_DATA_DIR>/audio
    ranked = ok(env, "get_hard_tracks.py", "-i", USER, "-q", 2, "--json")
    names = ", ".join(f"musicnn_{k}" for k in range(5))
    assert f"note: member(s) {names} skipped: reads audio; no audio folder" in ranked.stderr
    retrained = ok(env, "retrain_model.py", "-i", USER, "-a",
                   json.dumps({s: f"Q{quadrant_of(s) + 1}" for s in json.loads(ranked.stdout)}))
    assert f"note: member(s) {names} skipped" in retrained.stderr
    out = env["dir"] / "pred.json"
    predicted = ok(env, "predict_emotion.py", "-i", env["dir"] / "data" / "feats" / "clip02.csv", "-o", out, "-u", USER)
    assert f"note: member(s) {names} skipped" in predicted.stderr
    result = json.loads(out.read_text())
    assert sorted(result["skipped_members"]) == names.split(", ")
    state = json.loads((env["users"] / USER / "state.json").read_text())
    assert state["iteration"] == 2 and state["history"][-1]["not_updated"] == names.split(", ")
    assert Committee.load(env["users"] / USER / state["committee"]).algorithms() == ["xgb"] * 5 + ["musicnn"] * 5
    assert len(load_pool(env["dir"] / "data" / "feats").song_ids) == len(SONGS)


def test_a_crowd_listener_of_a_musicnn_committee_reads_the_audio_for_its_evidence(env):
    """A --crowd-member user of a committee with musicnn members: on songs no other listener
    annotated, the crowd members' confidence is bounded by the audio committee's (the evidence),
    whose musicnn member reads the pool audio; the ranking gets it (it was handed none)."""
    annotations = env["dir"] / "data" / "annotations.csv"
    rows = [(user, song, f"Q{(quadrant_of(song) + k) % 4 + 1}") for k, user in enumerate(("u1", "u2", "u3"))
            for song in SONGS[:6]]  # clip06 and clip07: no other listener
    annotations.write_text("user,song,quadrant\n" + "".join(f"{u},{s},{q}\n" for u, s, q in rows))
    env["env"]["MER_ANNOTATIONS"] = str(annotations)
    ok(env, "create_user.py", "-i", USER, "-m", "mc", "--crowd-member", "--committee", env["committee"])
    songs = json.loads(ok(env, "get_hard_tracks.py", "-i", USER, "-q", 3, "--json").stdout)
    assert len(songs) == 3
    ok(env, "retrain_model.py", "-i", USER, "-a", json.dumps({s: f"Q{quadrant_of(s) + 1}" for s in songs}))
    # without audio the evidence goes on without its musicnn member, and says so
    import shutil

    shutil.rmtree(env["dir"] / "data" / "audio")
    del env["env"]["MER_AUDIO_DIR"]
    ranked = ok(env, "get_hard_tracks.py", "-i", USER, "-q", 5, "--json")
    assert sorted(json.loads(ranked.stdout) + songs) == SONGS
    assert "note: member(s) musicnn_0 skipped" in ranked.stderr


# --- what mutation testing found untested -----------------------------------------------------
def test_samples_are_keyed_as_float32_and_embeddings_kept_in_memory(tmp_path, monkeypatch):
    samples = clip("clip03").astype(np.float64)
    first = tagger.embed(["x"], {"x": samples}, cache_dir=tmp_path)
    assert first.dtype == np.float32 and first.shape == (1, tagger.EMBEDDING_SIZE)
    reads = []
    real = tagger._read_cached
    monkeypatch.setattr(tagger, "_read_cached", lambda entry: reads.append(entry) or real(entry))
    monkeypatch.setattr(tagger, "song_embedding", lambda s: pytest.fail("computed again"))
    # the same audio as float32: the same key, served from the process' memory (no file read)
    np.testing.assert_array_equal(tagger.embed(["y"], {"y": samples.astype(np.float32)}, cache_dir=tmp_path), first)
    assert reads == []


@pytest.mark.parametrize("bad, why", [
    (np.zeros(399, np.float32), "not 400 finite float32"),
    (np.zeros(400, np.float64), "not 400 finite float32"),
    (np.full(400, np.nan, np.float32), "not 400 finite float32"),
])
def test_a_cached_entry_of_the_wrong_shape_or_values_is_recomputed(tmp_path, bad, why):
    from trompa_mer import cache_files
    from trompa_mer.atomic import write_json

    source = {"x": clip("clip02")}
    good = tagger.embed(["x"], source, cache_dir=tmp_path)
    entry = next(tmp_path.glob("musicnn-*/*.npy"))
    np.save(entry, bad)
    write_json(entry.with_suffix(".json"), cache_files.record_of(entry))  # a valid record of bad data
    tagger._embeddings.clear()
    with pytest.warns(Warning, match=why) as caught:
        again = tagger.embed(["x"], source, cache_dir=tmp_path)
    assert str(entry) in str(caught[0].message)
    np.testing.assert_array_equal(again, good)


def test_a_cache_that_cannot_be_written_warns_and_still_embeds(tmp_path):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder should be")
    with pytest.warns(Warning, match="song embedding not cached") as caught:
        out = tagger.embed(["x"], {"x": clip("clip01")}, cache_dir=blocked)
    assert str(blocked) in str(caught[0].message)
    assert out.shape == (1, tagger.EMBEDDING_SIZE) and np.isfinite(out).all()


def test_a_missing_cache_folder_is_created_with_its_parents(tmp_path):
    deep = tmp_path / "a" / "b"
    tagger.embed(["x"], {"x": clip("clip01")}, cache_dir=deep)
    assert len(list(deep.glob("musicnn-*/*.npy"))) == 1


def test_a_non_finite_embedding_is_refused_naming_the_song(monkeypatch):
    monkeypatch.setattr(tagger, "song_embedding", lambda s: np.full(400, np.nan, np.float32))
    with pytest.raises(MERError, match="'odd'.*musicnn embedding"):
        tagger.embed(["odd"], {"odd": clip("clip01")})


def test_index_entries_of_another_shape_are_dropped_and_unchanged_index_not_rewritten(tmp_path, monkeypatch):
    import soundfile

    from trompa_mer.audio_cache import AudioCache

    soundfile.write(tmp_path / "clip00.wav", clip("clip00"), SR)
    source = AudioCache.from_folder(tmp_path, tmp_path / "cache")
    tagger.embed(["clip00"], source)
    index = next((tmp_path / "cache").glob("musicnn-*/sources.json"))
    stamp = index.stat().st_mtime_ns
    tagger._digests.clear()
    tagger.embed(["clip00"], source)
    assert index.stat().st_mtime_ns == stamp, "an unchanged index is not written again"
    index.write_text(json.dumps({"/elsewhere/a.wav": 5, "/elsewhere/b.wav": ["x"],
                                 str((tmp_path / "clip00.wav").resolve()): [[1, 2, 3, 4], 7]}))
    tagger._digests.clear()
    assert tagger._read_index(index.parent) == {}
    tagger.embed(["clip00"], source)  # hashed again, the index repaired
    assert list(json.loads(index.read_text())) == [str((tmp_path / "clip00.wav").resolve())]


def test_member_parameters_seed_weights_and_metadata(tmp_path):
    from trompa_mer import hyperparameters

    assert tagger.MusicnnMember().sgd_params == hyperparameters.SONG_SGD_PARAMS
    member = tagger.MusicnnMember(params=dict(hyperparameters.SONG_SGD_PARAMS, alpha=0.5), seed=5)
    assert member.sgd_params["alpha"] == 0.5 and member.seed == 5
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, tagger.EMBEDDING_SIZE)).astype(np.float32)  # embeddings given directly
    y = np.arange(40) % 4
    plain = tagger.MusicnnMember().fit(X, y).predict_proba(X)
    weighted = tagger.MusicnnMember().fit(X, y, sample_weight=np.where(y == 0, 5.0, 1.0)).predict_proba(X)
    assert not np.allclose(plain, weighted)
    names = tagger.MusicnnMember().fit(X, y).save(tmp_path / "m")
    meta = json.loads((tmp_path / names[1]).read_text())
    assert meta["embedding"] == {"front_end": "musicnn MSD (trompa_mer.musicnn)",
                                 "signature": tagger.embedding_signature(), "size": 400}
    with pytest.raises(MERError, match="got ndarray"):
        tagger.MusicnnMember().fit(X[None], y)


def test_member_defaults_and_an_unwritable_index(tmp_path):
    member = tagger.MusicnnMember()
    assert member.temperature == 1.0 and member.seed == 1987
    import soundfile

    from trompa_mer.audio_cache import AudioCache

    soundfile.write(tmp_path / "clip00.wav", clip("clip00"), SR)
    source = AudioCache.from_folder(tmp_path, tmp_path / "cache")
    (tagger.cache_folder(source) / tagger.SOURCES_INDEX).mkdir(parents=True)  # in the index's way
    with pytest.warns(Warning, match="not written.*hashed again next time") as caught:
        out = tagger.embed(["clip00"], source)
    assert tagger.SOURCES_INDEX in str(caught[0].message) and np.isfinite(out).all()


def test_cross_corpus_scores_a_committee_with_musicnn_members(assets, tmp_path):
    """experiments/cross_corpus.py with the default committee's kind of members: the musicnn
    members read the corpus' clips (before, it stopped: audio members need song ids and an audio
    source), cached where deam_classifier.py --dataset caches them."""
    import os
    import subprocess
    import sys

    import soundfile as sf

    from conftest import ROOT
    from trompa_mer.datasets.corpus_cache import folder_signature

    root = tmp_path / "shared" / "4q"
    (root / "audio").mkdir(parents=True)
    for song in SONGS:
        sf.write(root / "audio" / f"{song}.wav", clip(song), SR)
    (root / "annotations.csv").write_text(
        "Song,Quadrant\n" + "".join(f"{s},Q{quadrant_of(s) + 1}\n" for s in SONGS))
    (root / "metadata.csv").write_text("Song,Artist\n" + "".join(f"{s},a{s}\n" for s in SONGS))
    env = dict(os.environ, MER_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(ROOT / "experiments" / "cross_corpus.py"), "--committee",
                             str(assets / "committee"), "--corpus", "4q", "--shared", str(tmp_path / "shared"),
                             "--jobs", "1"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(x for x in result.stdout.splitlines() if " on 8 4q songs: macro F1" in x)
    assert float(line.split("accuracy ")[1]) > 0.5  # the clips it learned, in their quadrants
    assert list((tmp_path / "cache" / f"4q-audio-{folder_signature(root / 'audio')}").glob("musicnn-*"))
