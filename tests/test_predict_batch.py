"""predict_emotion.py on several inputs (a folder, a list of files), JSON per song, JSON Lines,
stdout, progress, the pool's features reused, and --scale on predicted values; run as a user
would on a small generated pool and committee (tests/test_loop_support.py)."""
import json
import shutil

import numpy as np
import pytest

from test_loop_av import av_env, build_av_committee  # noqa: F401
from test_loop_support import (assert_refused, call, call_ok, loop_assets, loop_env, ok, run,  # noqa: F401
                               snapshot)


def _inputs(env, songs=("song01", "song02", "song03")):
    folder = env["dir"] / "inputs"
    (folder / "sub").mkdir(parents=True)
    for i, song in enumerate(songs):
        shutil.copy(env["feats"] / f"{song}.csv", (folder / "sub" if i == 0 else folder) / f"{song}.csv")
    return folder


def _single(env, csv, out):
    call_ok(env, "predict_emotion.py", "-i", csv, "-o", out)
    return json.loads(out.read_text())


def _noise_wav(path, seconds=2.0, seed=0):
    import soundfile

    rng = np.random.default_rng(seed)
    soundfile.write(path, (0.1 * rng.normal(size=int(16000 * seconds))).astype(np.float32), 16000)


def test_a_folder_to_one_json_per_song_and_json_lines(loop_env):
    env = loop_env
    folder = _inputs(env)
    out = env["dir"] / "predictions"
    out.mkdir()
    result = run(env, "predict_emotion.py", "-i", folder, "-o", out)
    assert result.returncode == 0, result.stderr
    progress = result.stderr.splitlines()
    assert [line.split(" ")[0] for line in progress[:3]] == ["[1/3]", "[2/3]", "[3/3]"]
    assert progress[-1].startswith("3 of 3 inputs predicted (default committee") and "one JSON per song" in progress[-1]
    assert sorted(p.name for p in out.iterdir()) == ["song01.json", "song02.json", "song03.json"]
    for song in ("song01", "song02", "song03"):
        batch = json.loads((out / f"{song}.json").read_text())
        alone = _single(env, env["feats"] / f"{song}.csv", env["dir"] / "alone.json")
        assert {k: v for k, v in batch.items() if k != "input_feats"} == \
               {k: v for k, v in alone.items() if k != "input_feats"}
        assert batch["input_feats"].endswith(f"{song}.csv")

    # a list of files into a .jsonl file, and JSON Lines on stdout (progress only on stderr)
    files = [env["feats"] / "song05.csv", env["feats"] / "song04.csv"]
    jsonl = env["dir"] / "all.jsonl"
    call_ok(env, "predict_emotion.py", "-i", *files, "-o", jsonl, "-q")
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["input_feats"] for line in lines] == [str(f) for f in files]
    printed = call_ok(env, "predict_emotion.py", "-i", *files, "-o", "-")
    assert [json.loads(line) for line in printed.stdout.splitlines()] == lines
    assert "[2/2]" in printed.stderr and "-> stdout (JSON Lines)" in printed.stderr


def test_one_input_to_stdout_and_the_single_file_behaviour(loop_env):
    env = loop_env
    out = env["dir"] / "one.json"
    printed = call_ok(env, "predict_emotion.py", "-i", env["feats"] / "song07.csv", "-o", out)
    assert f"-> {out}" in printed.stdout and printed.stderr == ""
    to_stdout = call_ok(env, "predict_emotion.py", "-i", env["feats"] / "song07.csv", "-o", "-")
    assert json.loads(to_stdout.stdout) == json.loads(out.read_text())
    assert "-> stdout" in to_stdout.stderr


def test_refusals_and_a_failed_input(loop_env):
    env = loop_env
    csv = env["feats"] / "song01.csv"
    before = snapshot(env["dir"])
    assert_refused(call(env, "predict_emotion.py", "-i", csv, "-o", env["dir"] / "missing" / "x.json"),
                   "-o/--output", "missing", "does not exist")
    folder = _inputs(env)
    before = snapshot(env["dir"])
    assert_refused(call(env, "predict_emotion.py", "-i", folder, "-o", env["dir"] / "missing"),
                   "folder", "missing", "does not exist")
    assert_refused(call(env, "predict_emotion.py", "-i", folder, "-o", env["dir"] / "x.json"),
                   "existing folder", ".jsonl")
    assert_refused(call(env, "predict_emotion.py", "-i", folder, "-o", env["dir"] / "no" / "x.jsonl"),
                   "does not exist")
    assert_refused(call(env, "predict_emotion.py", "-i", env["dir"] / "nothing", csv, "-o", "-"),
                   "nothing", "input not found")
    (env["dir"] / "empty").mkdir()
    assert_refused(call(env, "predict_emotion.py", "-i", env["dir"] / "empty", "-o", "-"), "empty",
                   "no feature CSVs or audio files")
    assert_refused(call(env, "predict_emotion.py", "-i", folder, "-o", "-", "--song-id", "x"), "--song-id")
    (env["dir"] / "empty").rmdir()
    assert snapshot(env["dir"]) == before, "nothing written by a refusal"
    # two inputs with one song id cannot share a folder
    shutil.copy(csv, folder / "SONG01.csv")
    out = env["dir"] / "out"
    out.mkdir()
    assert_refused(call(env, "predict_emotion.py", "-i", folder, "-o", out), "song01.json", "distinct",
                   "-o FILE.jsonl")
    (folder / "SONG01.csv").unlink()
    # an unreadable input: reported, the others written, exit 1
    (folder / "broken.csv").write_text("frameTime;x\n")
    (folder / "corrupt.mp3").write_bytes(b"not audio at all" * 64)
    result = call(env, "predict_emotion.py", "-i", folder, "-o", out)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "broken.csv" in errors[0] and "corrupt.mp3" in errors[1], errors
    assert "3 of 5 inputs predicted" in result.stderr and "2 failed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["song01.json", "song02.json", "song03.json"]


def test_audio_of_a_pool_song_reuses_its_features(loop_env):
    env = loop_env
    folder = env["dir"] / "audio_in"
    folder.mkdir()
    _noise_wav(folder / "Song03.wav")   # a pool song: its feature CSV is reused, not re-extracted
    _noise_wav(folder / "fresh.wav", seed=1)  # not in the pool: extracted
    printed = call_ok(env, "predict_emotion.py", "-i", folder, "-o", "-")
    lines = {json.loads(line)["input_feats"]: json.loads(line) for line in printed.stdout.splitlines()}
    reused, fresh = lines[str(folder / "Song03.wav")], lines[str(folder / "fresh.wav")]
    assert reused["features_source"] == str(env["feats"] / "song03.csv") and reused["input_kind"] == "audio"
    from_csv = _single(env, env["feats"] / "song03.csv", env["dir"] / "csv.json")
    assert reused["output_probs"] == from_csv["output_probs"]
    assert "features_source" not in fresh and fresh["input_kind"] == "audio"
    assert "Song03.wav: " in printed.stderr and "(pool features)" in printed.stderr
    again = call_ok(env, "predict_emotion.py", "-i", folder / "Song03.wav", folder / "fresh.wav", "-o", "-",
                    "--no-pool")
    extracted = json.loads(again.stdout.splitlines()[0])
    assert "features_source" not in extracted and extracted["output_probs"] != from_csv["output_probs"]


@pytest.mark.parametrize("scale", ["1..9", "-3..3"])
def test_scale_maps_predicted_values(av_env, scale):
    env = av_env
    low, high = (float(x) for x in scale.split(".."))
    plain = env["dir"] / "plain.json"
    scaled = env["dir"] / "scaled.json"
    call_ok(env, "predict_emotion.py", "-i", env["feats"] / "song05.csv", "-o", plain)
    # --scale=LOW..HIGH: a scale starting with '-' would read as a flag after a space
    out = call_ok(env, "predict_emotion.py", "-i", env["feats"] / "song05.csv", "-o", scaled, f"--scale={scale}")
    a, b = json.loads(plain.read_text()), json.loads(scaled.read_text())
    on_scale = lambda v: low + (v + 1) / 2 * (high - low)  # noqa: E731
    assert b["arousal"] == pytest.approx(on_scale(a["arousal"]), abs=1e-12)
    assert b["valence"] == pytest.approx(on_scale(a["valence"]), abs=1e-12)
    np.testing.assert_allclose(b["output_valence"], [on_scale(v) for v in a["output_valence"]], atol=1e-12)
    assert b["av_scale"] == [low, high] and "av_scale" not in a
    assert b["mean_probs"] == a["mean_probs"]
    assert f"on {scale}" in out.stdout
    bad = call(env, "predict_emotion.py", "-i", env["feats"] / "song05.csv", "-o", scaled, "--scale", "9..1")
    assert bad.returncode == 2 and "--scale: expected LOW..HIGH" in bad.stderr
