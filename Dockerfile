# TROMPA-MER personalization toolkit: openSMILE features, the committee and the CNN member.
#
# CPU image (default):
#   docker build -t trompa-mer .
# CUDA image (the CNN trains on the GPU; run with --gpus all):
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t trompa-mer:cuda .
# Offline image (torch and, with PIP_NO_INDEX=1, everything else from docker/wheels/):
#   docker build --build-arg LOCAL_WHEELS=1 --build-arg PIP_NO_INDEX=1 -t trompa-mer .
# Models and data are volumes, see docs/docker.md.
ARG BASE_IMAGE=python:3.11-slim

# ---- build stage: the virtual environment (the wheels never reach the final image) ----------
FROM ${BASE_IMAGE} AS build

# Where the torch wheel comes from: the CPU build by default, a CUDA build for the CUDA base.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# 1: torch from the wheel in docker/wheels/ that matches the requirements.txt pin, and the rest
# with that folder as pip --find-links (for hosts that cannot reach TORCH_INDEX_URL).
ARG LOCAL_WHEELS=0
# pip reads these from the environment: PIP_NO_INDEX=1 (with LOCAL_WHEELS=1, an offline build
# from docker/wheels/ alone) or PIP_INDEX_URL (a mirror). Build arguments only: not in the image.
ARG PIP_NO_INDEX
ARG PIP_INDEX_URL

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# The CUDA base images (and a bare Debian) ship without Python, so it is installed from the
# distribution there (the python base already has it). Distribution package versions move with
# the base image's security updates, hence no pins.
# hadolint ignore=DL3008
RUN apt-get update \
 && if ! command -v python3 >/dev/null 2>&1; then \
        apt-get install -y --no-install-recommends python3 python3-venv; \
    fi \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

WORKDIR /build

# torch first (same pinned version as requirements.txt), then the rest; pip keeps that torch
# because its version satisfies the pin. docker/wheels/ holds only a README unless you put
# wheels there (docs/docker.md, "Build without access to the torch index").
COPY requirements.txt ./
COPY docker/wheels/ ./wheels/
# The local wheel is installed by its file name, which carries the pinned version (DL3013).
# hadolint ignore=DL3013
RUN version="$(sed -n 's/^torch==//p' requirements.txt)" \
 && if [ "${LOCAL_WHEELS}" = "1" ]; then \
        wheel=""; \
        for candidate in wheels/torch-"${version}"-*.whl wheels/torch-"${version}"+*.whl; do \
            if [ -f "${candidate}" ]; then wheel="${candidate}"; fi; \
        done; \
        if [ -z "${wheel}" ]; then \
            echo "error: LOCAL_WHEELS=1 but docker/wheels/ holds no torch-${version}*.whl (the requirements.txt pin)" >&2; \
            exit 1; \
        fi; \
        pip install --no-cache-dir --find-links wheels "${wheel}" \
        && pip install --no-cache-dir --find-links wheels -r requirements.txt; \
    else \
        pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "torch==${version}" \
        && pip install --no-cache-dir -r requirements.txt; \
    fi

# ---- final stage ------------------------------------------------------------------------
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# libgomp1: OpenMP runtime for XGBoost; python3 where the base has none (the same one the
# build stage's virtual environment points at).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && if ! command -v python3 >/dev/null 2>&1; then \
        apt-get install -y --no-install-recommends python3; \
    fi \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/venv /opt/venv

WORKDIR /app

# Every root script (tests/test_docker.py checks none is missing), the experiments, the package
# (with the musicnn weights in trompa_mer/weights/) and both shipped committees.
COPY settings.py create_user.py extract_features.py predict_emotion.py get_hard_tracks.py \
     retrain_model.py deam_classifier.py get_recommendations.py simulate_personalization.py \
     manage_users.py pretrain_encoder.py demo.py ./
COPY experiments/ ./experiments/
COPY trompa_mer/ ./trompa_mer/
COPY models/pretrained/ ./models/pretrained/
COPY models/pretrained-features/ ./models/pretrained-features/

# The shipped committee stays in the image; users, encoders, data and caches live on the volumes.
# Matplotlib's and numba's caches in /tmp: with `--user "$(id -u):$(id -g)"` the container's
# user may have no home (HOME=/), and librosa's numba functions refuse to import when numba has
# nowhere to write its cache.
ENV MER_MODELS_DIR=/models \
    MER_DATA_DIR=/data \
    MER_PRETRAINED_DIR=/app/models/pretrained \
    MER_CACHE_DIR=/data/.cache \
    MER_SHARED_DATA=/shared \
    MER_DEMO_DIR=/data/demo \
    MPLCONFIGDIR=/tmp/matplotlib \
    NUMBA_CACHE_DIR=/tmp/numba

# Files written through trompa_mer.atomic are created 0600 (mkstemp), so a committee saved on
# the host may not be readable by the unprivileged user without the chmod.
RUN chmod -R a+rX /app \
 && groupadd --gid 10001 mer \
 && useradd --uid 10001 --gid 10001 --create-home mer \
 && mkdir -p /models /data /shared \
 && chown mer:mer /models /data
USER 10001:10001
VOLUME ["/models", "/data"]

ENTRYPOINT ["python"]
CMD ["predict_emotion.py", "--help"]
