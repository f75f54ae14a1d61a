#!/usr/bin/env bash
# Build the image, then run every step of the toolkit in a container against throwaway data and
# models volumes (docs/docker.md, "Checked with a Docker engine"). Needs a running Docker engine:
# not part of `make test` or CI (CI has none); tests/test_docker.py is the static check.
#
#   tools/docker_check.sh                  # docker build -t trompa-mer:check ., then every step
#
# Environment:
#   IMAGE=trompa-mer:check     the tag to build and run
#   BUILD_ARGS="..."           extra `docker build` arguments, word-split, e.g. for a host without
#                              a registry or the torch index (how it was run here):
#                              BUILD_ARGS="--network host --build-arg BASE_IMAGE=bookworm-base
#                                --build-arg LOCAL_WHEELS=1 --build-arg PIP_NO_INDEX=1"
#   FILL_WHEELS=1              before the build, `pip download` every requirement (torch included)
#                              into docker/wheels/ with $PYTHON's pip (its own indexes and
#                              --find-links apply; a Python 3.11 on x86-64 Linux, as the image's),
#                              for LOCAL_WHEELS=1; removed again afterwards
#                              unless KEEP_WHEELS=1 (they are gitignored either way)
#   PYTHON=.venv/bin/python    the pip that fills docker/wheels/
#   SKIP_BUILD=1               run the steps on an existing $IMAGE
#   RUN_USER=uid:gid           the container's user (default: yours, as docs/docker.md shows;
#                              as root, 12345:12345, a uid the image does not know, with the
#                              throwaway folders chowned to it, so the non-root case is run)
#   KEEP_WORKDIR=1             keep the throwaway folders (printed at the end)
# Exit status: 0 when the build and every step succeeded, else 1; one line per step.
set -uo pipefail

cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-trompa-mer:check}
PYTHON=${PYTHON:-.venv/bin/python}
WORK=$(mktemp -d /tmp/trompa-docker-check.XXXXXX)
LOG="$WORK/log.txt"
failures=0

cleanup() {
    if [ "${FILL_WHEELS:-0}" = "1" ] && [ "${KEEP_WHEELS:-0}" != "1" ]; then
        find docker/wheels -maxdepth 1 -name '*.whl' -delete
    fi
    if [ "${KEEP_WORKDIR:-0}" = "1" ]; then
        echo "throwaway folders kept: $WORK"
    else
        rm -rf "$WORK" || echo "could not remove $WORK"
    fi
}
trap cleanup EXIT

if [ "${FILL_WHEELS:-0}" = "1" ]; then
    echo "== pip download -r requirements.txt -> docker/wheels/"
    # pip picks the wheels for the interpreter that runs it: it must be the image's (3.11, x86-64 Linux)
    "$PYTHON" -c 'import platform, sys; sys.exit(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64" or sys.platform != "linux")' \
        || { echo "error: FILL_WHEELS=1 needs PYTHON to be a Python 3.11 on x86-64 Linux (the image's); $PYTHON is not"; exit 1; }
    "$PYTHON" -m pip download -q -r requirements.txt -d docker/wheels --only-binary=:all: || exit 1
    echo "   $(find docker/wheels -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh docker/wheels | cut -f1)"
fi

if [ "${SKIP_BUILD:-0}" != "1" ]; then
    echo "== docker build -t $IMAGE ${BUILD_ARGS:-} ."
    started=$(date +%s)
    # shellcheck disable=SC2086  # BUILD_ARGS is a list of arguments
    if ! DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -t "$IMAGE" ${BUILD_ARGS:-} . >"$WORK/build.txt" 2>&1; then
        tail -n 30 "$WORK/build.txt"
        echo "FAILED: docker build (whole log: $WORK/build.txt)"
        KEEP_WORKDIR=1
        exit 1
    fi
    echo "   built in $(( $(date +%s) - started )) s"
fi
echo "   image size: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB (%d bytes)", $1/1e9, $1}')"

mkdir -p "$WORK/data" "$WORK/models"
if [ -n "${RUN_USER:-}" ]; then
    user=$RUN_USER
elif [ "$(id -u)" = "0" ]; then
    user=12345:12345
else
    user="$(id -u):$(id -g)"
fi
chown -R "$user" "$WORK/data" "$WORK/models" 2>/dev/null || true

# the documented form: docker run --rm --user … -v data:/data -v models:/models IMAGE <script> …
mer() {
    docker run --rm --user "$user" -v "$WORK/data:/data" -v "$WORK/models:/models" "$@"
}

step() {  # step NAME command…: run it, log its output, print one line
    local name=$1; shift
    local started rc
    started=$(date +%s)
    { echo; echo "### $name: $*"; } >>"$LOG"
    "$@" >>"$LOG" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        printf 'ok      %-28s %4d s\n' "$name" $(( $(date +%s) - started ))
    else
        printf 'FAILED  %-28s %4d s (exit %d; output in %s)\n' "$name" $(( $(date +%s) - started )) $rc "$LOG"
        failures=$((failures + 1))
        KEEP_WORKDIR=1
    fi
    return $rc
}

# The data the steps need is prepared here on the host (python3's standard library), so that
# every container runs one of the toolkit's scripts: each `docker run` costs a copy of the image
# on some storage drivers (vfs).
prepare() {  # prepare NAME python-code: run it on the host in $WORK/data, then hand the files over
    local name=$1
    { echo; echo "### $name (host)"; } >>"$LOG"
    if (cd "$WORK/data" && python3 -c "$2") >>"$LOG" 2>&1; then
        chown -R "$user" "$WORK/data" "$WORK/models" 2>/dev/null || true
    else
        printf 'FAILED  %-28s (preparing on the host; output in %s)\n' "$name" "$LOG"
        failures=$((failures + 1))
        KEEP_WORKDIR=1
    fi
}

echo "== steps (user $user, volumes under $WORK)"
step "demo.py" mer "$IMAGE" demo.py
prepare "clips for the pool" "
import pathlib, shutil
src = sorted(pathlib.Path('demo/generated_audio').glob('*.wav'))
pathlib.Path('audio').mkdir(exist_ok=True)
for f in src[::2]: shutil.copy(f, pathlib.Path('audio') / f.name)
print(len(src[::2]), 'clips in audio/')"
step "extract_features.py" mer "$IMAGE" extract_features.py -i /data/audio -o /data/feats -j 2
step "create_user.py" mer "$IMAGE" create_user.py -i alice -m mc
step "get_hard_tracks.py" mer "$IMAGE" get_hard_tracks.py -i alice -q 2 --json
prepare "answers for the round" "
import json, pathlib
state = json.loads(pathlib.Path('../models/users/alice/state.json').read_text())
assert state['pending'], 'no pending songs in the state'
answers = {s: s.rsplit('_', 1)[1].upper() for s in state['pending']}  # clipNN_q3 -> Q3, its design
pathlib.Path('alice_round1.json').write_text(json.dumps(answers))
print(answers)"
step "retrain_model.py" mer "$IMAGE" retrain_model.py -i alice -a /data/alice_round1.json
first_song=$(find "$WORK/data/feats" -name '*.csv' | sort | head -n 1)
first_song=$(basename "${first_song%.csv}")
step "predict_emotion.py (CSV)" mer "$IMAGE" predict_emotion.py -u alice -i "/data/feats/$first_song.csv" \
    -o /data/prediction_alice.json
step "predict_emotion.py (audio)" mer "$IMAGE" predict_emotion.py -u alice -i "/data/audio/$first_song.wav" \
    -o /data/prediction_alice_audio.json
prepare "playlists.csv" "
import pathlib
songs = sorted(p.stem for p in pathlib.Path('feats').glob('*.csv'))
pathlib.Path('playlists.csv').write_text('group,song\n' + ''.join(f'party,{s}\n' for s in songs))
print(len(songs), 'songs in group party')"
step "get_recommendations.py" mer "$IMAGE" get_recommendations.py -i alice -r party
step "manage_users.py export" mer "$IMAGE" manage_users.py export -i alice -o /data/alice_answers.csv
prepare "generic corpus for training" "
import csv, pathlib
files = sorted(pathlib.Path('demo/data/feats').glob('*.csv'))
with open('generic_features.csv', 'w', newline='') as out, open('generic_labels.csv', 'w', newline='') as labels:
    writer, label_writer = csv.writer(out, delimiter=';'), csv.writer(labels)
    label_writer.writerow(['song_id', 'quadrant'])
    for i, f in enumerate(files):
        rows = list(csv.reader(f.open(), delimiter=';'))
        if i == 0: writer.writerow(['song_id'] + rows[0])
        writer.writerows([f.stem] + row for row in rows[1:])
        label_writer.writerow([f.stem, f.stem.rsplit('_', 1)[1].upper()])
print(len(files), 'songs')"
step "deam_classifier.py (tiny)" mer "$IMAGE" deam_classifier.py --dataset generic \
    --features /data/generic_features.csv --labels /data/generic_labels.csv -m sgd,xgb -cv 2 \
    --window-stride 2 --quiet -o /models/tiny-committee
step "pretrain_encoder.py (tiny)" mer "$IMAGE" pretrain_encoder.py --method scae --audio /data/audio \
    --epochs 1 --width 4 --quiet --device cpu --out /models/encoders/scae-tiny
step "simulate_personalization.py --help" mer "$IMAGE" simulate_personalization.py --help
# every experiment's --help in one container (imports and argument parsing of each)
step "experiments/*.py --help" mer --entrypoint sh "$IMAGE" -c \
    'for f in experiments/*.py; do echo "== $f"; python "$f" --help >/dev/null || exit 1; done'

echo "== $failures failed step(s); every command's output: $LOG (kept with KEEP_WORKDIR=1 or a failure)"
[ "$failures" -eq 0 ]
