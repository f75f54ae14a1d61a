#!/usr/bin/env python3
"""The whole personalization loop on a fresh machine, driven through the scripts.

  python demo.py                       # generated clips (no data needed)
  MER_DEMO_AUDIO=../shared/data/emotify/audio python demo.py   # a folder of real audio

Steps: clips -> extract_features.py -> a committee (the shipped models/pretrained when it
exists, else one trained here on the generated clips) -> create_user.py -> three rounds of
get_hard_tracks.py and scripted answers -> retrain_model.py -> predict_emotion.py before and
after -> get_recommendations.py. The shipped committee's musicnn members read each song's
audio: the demo points MER_AUDIO_DIR at the clips and predicts from the audio files.

Everything is written under MER_DEMO_DIR (default data/demo), which the demo points the
scripts at through MER_MODELS_DIR / MER_DATA_DIR (the decoded audio and the musicnn
embeddings go to MER_DEMO_DIR/cache, kept between runs); the demo user is recreated on every run.
MER_DEMO_LIMIT (default 40) caps how many real audio files are used, to keep it short.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import settings  # noqa: E402  (first: outside the venv it prints the set-up command)
import numpy as np  # noqa: E402
from trompa_mer.quadrants import QUADRANTS  # noqa: E402

RATE = 22050
CLIP_SECONDS = 6.0
USER = "demo_listener"
ROUNDS = 3
PER_ROUND = 3

# (quadrant, tempo bpm, minor?, brightness = number of harmonics, loudness, dissonant?)
# High arousal: fast, bright, loud; low valence: minor, dissonant.
CLIP_DESIGN = [
    ("Q1", 150, False, 8, 0.5, False), ("Q1", 132, False, 6, 0.45, False), ("Q1", 120, False, 7, 0.4, False),
    ("Q2", 156, True, 9, 0.55, True), ("Q2", 140, True, 8, 0.5, True), ("Q2", 126, True, 7, 0.5, True),
    ("Q3", 60, True, 2, 0.15, False), ("Q3", 70, True, 3, 0.12, True), ("Q3", 54, True, 2, 0.1, False),
    ("Q4", 66, False, 2, 0.15, False), ("Q4", 76, False, 3, 0.18, False), ("Q4", 58, False, 2, 0.12, False),
]


def say(text: str) -> None:
    print(text, flush=True)


def step(n: int, text: str) -> None:
    say(f"\n== {n}. {text}")


def synthesize(tempo: float, minor: bool, harmonics: int, loudness: float, dissonant: bool,
               root_hz: float, seed: int) -> np.ndarray:
    """An arpeggio of a triad at `tempo`, with `harmonics` partials, plus clicks on the beats."""
    rng = np.random.default_rng(seed)
    n = int(CLIP_SECONDS * RATE)
    t = np.arange(n) / RATE
    third = 3 if minor else 4
    intervals = [0, third, 7, 12] + ([6] if dissonant else [])
    beat = 60.0 / tempo
    note_len = beat / 2
    signal = np.zeros(n)
    for k in range(int(CLIP_SECONDS / note_len)):
        start = int(k * note_len * RATE)
        length = min(int(note_len * RATE * 1.5), n - start)
        if length <= 0:
            break
        f0 = root_hz * 2 ** (intervals[rng.integers(len(intervals))] / 12)
        tt = t[:length]
        tone = sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, harmonics + 1))
        envelope = np.exp(-tt * (3.0 if tempo > 100 else 1.2))
        signal[start:start + length] += tone * envelope
    if tempo > 100:  # percussion makes the fast clips busier
        for k in range(int(CLIP_SECONDS / beat)):
            start = int(k * beat * RATE)
            length = min(int(0.05 * RATE), n - start)
            signal[start:start + length] += rng.normal(scale=0.8, size=length) * np.exp(-np.arange(length) / 200)
    signal /= np.max(np.abs(signal)) + 1e-9
    return (loudness * signal).astype(np.float32)


def generate_clips(audio_dir: Path) -> dict:
    """Write the designed clips; return {song_id: designed quadrant}."""
    import soundfile as sf

    audio_dir.mkdir(parents=True, exist_ok=True)
    labels = {}
    for i, (quadrant, tempo, minor, harmonics, loudness, dissonant) in enumerate(CLIP_DESIGN):
        song = f"clip{i:02d}_{quadrant.lower()}"
        root_hz = 220.0 * 2 ** ((i % 3) / 12)
        sf.write(audio_dir / f"{song}.wav",
                 synthesize(tempo, minor, harmonics, loudness, dissonant, root_hz, seed=i), RATE)
        labels[song] = quadrant
    return labels


class Scripts:
    """Runs the top-level scripts as a platform would, against the demo's folders."""

    def __init__(self, env: dict):
        self.env = env

    def __call__(self, script: str, *args, show: bool = True) -> str:
        command = [sys.executable, str(ROOT / script), *map(str, args)]
        shown = " ".join([f"python {script}", *map(str, args)])
        if show:
            say(f"$ {shown}")
        started = time.perf_counter()
        result = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            sys.stderr.write(result.stderr)
            raise SystemExit(f"demo: {shown} failed (exit {result.returncode})")
        if show:
            for line in result.stdout.strip().splitlines()[:12]:
                say(f"  {line}")
            say(f"  ({time.perf_counter() - started:.1f} s)")
        return result.stdout


def shipped_committee() -> Path | None:
    path = settings.PRETRAINED_DIR
    return path if (path / "committee.json").is_file() else None


def train_demo_committee(feats_dir: Path, labels: dict, out_dir: Path) -> None:
    from trompa_mer.examples import train_committee
    from trompa_mer.pool import load_pool
    from trompa_mer.quadrants import parse_quadrant

    pool = load_pool(feats_dir)
    known = [i for i, s in enumerate(pool.song_ids) if s in labels]
    # train on half of each quadrant's clips, so the committee is unsure about the rest
    train_songs = [pool.song_ids[i] for i in known if int(pool.song_ids[i][4:6]) % 3 == 0]
    sub = pool.subset(train_songs)
    y = np.repeat([parse_quadrant(labels[s]) for s in sub.song_ids], np.diff(sub.offsets))
    train_committee(sub.X, y, out_dir, xgb_rounds=20, xgb_update_rounds=5,
                    manifest={"note": "demo committee: trained by demo.py on 4 generated clips"})


def summary(feats_dir: Path, committee_dir: Path, user_dir: Path, labels: dict, audio_dirs) -> None:
    """Every pool song's predicted quadrant, default committee vs the listener's (in-process;
    audio members read the songs' audio from `audio_dirs`, (audio folder, cache folder))."""
    from trompa_mer.audio_cache import pool_audio_source
    from trompa_mer.committee import Committee
    from trompa_mer.pool import load_pool

    pool = load_pool(feats_dir)
    state = json.loads((user_dir / "state.json").read_text())
    answered = set(state.get("answers", {}))
    tables = {}
    for name, folder in (("before", committee_dir), ("after", user_dir / state["committee"])):
        committee = Committee.load(folder)
        readers = [committee.members[i][0] for i in committee.of_kind("audio")]
        audio = pool_audio_source(*audio_dirs, pool.song_ids.tolist(), readers) if readers else None
        proba = committee.song_proba(pool, audio=audio).mean(axis=0)
        tables[name] = [f"Q{q + 1}" for q in proba.argmax(axis=1)]
    songs = pool.song_ids.tolist()
    if all(s in labels for s in songs):
        for name, predicted in tables.items():
            hits = sum(p == labels[s] for s, p in zip(songs, predicted))
            unseen = [(s, p) for s, p in zip(songs, predicted) if s not in answered]
            unseen_hits = sum(p == labels[s] for s, p in unseen)
            say(f"  {name:6s}: {hits}/{len(songs)} clips predicted as the quadrant they were made for; "
                f"{unseen_hits}/{len(unseen)} of the clips the listener did not answer")
    changed = sum(a != b for a, b in zip(tables["before"], tables["after"]))
    say(f"  the listener's committee changed the predicted quadrant of {changed} of {len(songs)} songs")


def mean_line(result: dict) -> str:
    probs = " ".join(f"{q}={p:.2f}" for q, p in zip(QUADRANTS, result["mean_probs"]))
    return f"{result['highest_prob_quad']}  ({probs})"


def parse_args(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        description="Run the whole personalization loop through the scripts on generated clips "
                    "(or real audio): extract features, create a listener, three rounds of "
                    "get_hard_tracks.py / scripted answers / retrain_model.py, predictions before "
                    "and after, recommendations. Takes a minute or two.",
        epilog="Environment: MER_DEMO_DIR (where everything is written, default data/demo; the demo "
               "user is recreated each run), MER_DEMO_AUDIO (a folder of real audio instead of the "
               "generated clips), MER_DEMO_LIMIT (how many real files, default 40).")
    return parser.parse_args(argv)


def demo_limit(text: str) -> int:
    """MER_DEMO_LIMIT as a whole number, at least the songs the rounds ask about (ROUNDS x
    PER_ROUND): with fewer, the last round would have nothing left to ask."""
    need = ROUNDS * PER_ROUND
    try:
        limit = int(text)
    except ValueError:
        limit = None
    if limit is None or limit < need:
        raise SystemExit(f"demo: MER_DEMO_LIMIT={text!r}: expected a whole number of at least {need} "
                         f"(the {ROUNDS} rounds ask about {PER_ROUND} songs each)")
    return limit


def main(argv=None) -> int:
    parse_args(argv)
    demo_dir = Path(os.environ.get("MER_DEMO_DIR", ROOT / "data" / "demo")).resolve()
    real_audio = os.environ.get("MER_DEMO_AUDIO")
    limit = demo_limit(os.environ.get("MER_DEMO_LIMIT", "40"))
    data_dir, models_dir = demo_dir / "data", demo_dir / "models"
    feats_dir = data_dir / "feats"
    shutil.rmtree(models_dir / "users" / USER, ignore_errors=True)  # a fresh demo user each run
    say(f"Personalized MER demo in {demo_dir}")

    step(1, "Audio")
    gen_dir = demo_dir / "generated_audio"
    labels = generate_clips(gen_dir)
    if real_audio:
        from trompa_mer.features import find_audio

        source = Path(real_audio).expanduser().resolve()
        files = find_audio(source)[:limit]
        if not files:
            raise SystemExit(f"demo: MER_DEMO_AUDIO={source}: no audio files found")
        audio_dir = demo_dir / "real_audio"
        shutil.rmtree(audio_dir, ignore_errors=True)
        audio_dir.mkdir(parents=True)
        for f in files:  # links, not copies: the corpus stays where it is
            (audio_dir / f.name).symlink_to(f)
        say(f"using {len(files)} files of {source} (MER_DEMO_LIMIT={limit})")
    else:
        audio_dir = gen_dir
        say(f"generated {len(labels)} clips of {CLIP_SECONDS:g} s in {gen_dir} "
            "(tempo, mode, brightness and loudness chosen per quadrant)")

    # the shipped committee's musicnn members read the clips themselves (docs/loop.md)
    audio_cache_dir = demo_dir / "cache" / "audio16k"
    env = dict(os.environ, MER_MODELS_DIR=str(models_dir), MER_DATA_DIR=str(data_dir),
               MER_AUDIO_DIR=str(audio_dir), MER_AUDIO_CACHE_DIR=str(audio_cache_dir), PYTHONPATH=str(ROOT))
    env.pop("MER_FEATS_DIR", None)
    env.pop("MER_USERS_DIR", None)
    scripts = Scripts(env)

    step(2, "Features (openSMILE IS13, 1 s windows, 0.5 s hop)")
    shutil.rmtree(feats_dir, ignore_errors=True)
    scripts("extract_features.py", "-i", audio_dir, "-o", feats_dir, "--quiet", "--consolidate")

    step(3, "Committee")
    committee = shipped_committee()
    if committee is not None:
        from trompa_mer.committee import Committee

        shipped = Committee.load(committee)
        kinds = " + ".join(f"{shipped.algorithms().count(a)} {a}" for a in dict.fromkeys(shipped.algorithms()))
        reads = f"; its audio members read the clips in {audio_dir} (MER_AUDIO_DIR)" if shipped.of_kind("audio") else ""
        say(f"using the shipped committee {committee} ({kinds} members{reads})")
    else:
        committee = demo_dir / "committee"
        train_feats = feats_dir
        if real_audio:  # no labels for real audio: learn from the generated clips
            train_feats = demo_dir / "generated_feats"
            shutil.rmtree(train_feats, ignore_errors=True)
            scripts("extract_features.py", "-i", gen_dir, "-o", train_feats, "--quiet")
        say(f"no committee in {settings.PRETRAINED_DIR} yet: training a small one "
            f"(gnb + sgd + xgb) on 4 of the generated clips -> {committee}")
        train_demo_committee(train_feats, labels, committee)
    env["MER_PRETRAINED_DIR"] = str(committee)

    from trompa_mer.pool import load_pool

    from trompa_mer.features import find_audio

    songs = load_pool(feats_dir).song_ids.tolist()
    audio_of = {f.stem.lower(): f for f in find_audio(audio_dir)}  # song id -> its audio file
    # a clip the demo committee did not train on (see train_demo_committee)
    probe = next((s for s in songs if s in labels and int(s[4:6]) % 3 and not s.endswith("q1")), songs[0])
    # predicted from the audio file (its windows come from the pool), so audio members take part
    probe_input = audio_of.get(probe, feats_dir / f"{probe}.csv")

    step(4, f"Prediction before personalization ({probe})")
    before_json = demo_dir / "prediction_before.json"
    scripts("predict_emotion.py", "-i", probe_input, "-o", before_json, "-m", "default")
    before = json.loads(before_json.read_text())

    step(5, f"A listener: {USER} (machine-consensus queries)")
    scripts("create_user.py", "-i", USER, "-m", "mc")

    def answer(song: str, default_proba) -> str:
        if song in labels:  # the generated clips: the listener hears what they were made to be
            return labels[song]
        # real audio has no labels here: a scripted listener who hears each song as the
        # quadrant the committee ranks second (someone who mildly disagrees with the model)
        return f"Q{int(np.argsort(default_proba)[-2]) + 1}"

    for round_no in range(1, ROUNDS + 1):
        step(5 + round_no, f"Round {round_no}: the most ambiguous songs, then the listener's answers")
        asked = json.loads(scripts("get_hard_tracks.py", "-i", USER, "-q", PER_ROUND, "--json"))
        answers = {}
        for song in asked:
            out = demo_dir / "round_probe.json"
            if song in labels:
                answers[song] = answer(song, None)
            else:
                scripts("predict_emotion.py", "-i", audio_of.get(song, feats_dir / f"{song}.csv"), "-o", out,
                        "-u", USER, show=False)
                answers[song] = answer(song, json.loads(out.read_text())["mean_probs"])
        answers_path = demo_dir / f"answers_round{round_no}.json"
        answers_path.write_text(json.dumps(answers, indent=1))
        say(f"  listener answers: {json.dumps(answers)}")
        scripts("retrain_model.py", "-i", USER, "-a", answers_path)

    step(6 + ROUNDS, f"Prediction after personalization ({probe})")
    after_json = demo_dir / "prediction_after.json"
    scripts("predict_emotion.py", "-i", probe_input, "-o", after_json, "-u", USER)
    after = json.loads(after_json.read_text())
    say(f"  before: {mean_line(before)}")
    say(f"  after:  {mean_line(after)}" + (f"   (designed as {labels[probe]})" if probe in labels else ""))

    summary(feats_dir, committee, models_dir / "users" / USER, labels, (audio_dir, audio_cache_dir))

    step(7 + ROUNDS, "Recommendations from a playlist group")
    playlists = data_dir / "playlists.csv"
    with open(playlists, "w", encoding="utf-8") as handle:
        handle.write("group,song\n" + "".join(f"demo,{s}\n" for s in songs))
    scripts("get_recommendations.py", "-i", USER, "-r", "demo")

    state = json.loads((models_dir / "users" / USER / "state.json").read_text())
    say(f"\nDone: {state['iteration']} rounds, {len(state['answers'])} answers; the user folder is "
        f"{models_dir / 'users' / USER} (state.json holds the history).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
