# TROMPA-MER personalization toolkit: openSMILE features, the committee and the CNN member.
#
# CPU image (default):
#   docker build -t trompa-mer .
# CUDA image (the CNN trains on the GPU; run with --gpus all):
#   docker build --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 \
#                --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t trompa-mer:cuda .
# Models and data are volumes, see docs/docker.md.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# Where the torch wheel comes from: the CPU build by default, a CUDA build for the CUDA base.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# libgomp1: OpenMP runtime for XGBoost. The CUDA base images ship without Python, so it is
# installed from the distribution there (the python base already has it). Distribution
# package versions move with the base image's security updates, hence no pins.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && if ! command -v python3 >/dev/null 2>&1; then \
        apt-get install -y --no-install-recommends python3 python3-venv; \
    fi \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv

WORKDIR /app

# torch first from the chosen index (same pinned version as requirements.txt), then the rest;
# pip keeps that torch because its version satisfies the pin.
COPY requirements.txt ./
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "$(grep -E '^torch==' requirements.txt)" \
 && pip install --no-cache-dir -r requirements.txt

COPY settings.py create_user.py extract_features.py predict_emotion.py get_hard_tracks.py \
     retrain_model.py deam_classifier.py get_recommendations.py simulate_personalization.py \
     manage_users.py ./
COPY trompa_mer/ ./trompa_mer/
COPY models/pretrained/ ./models/pretrained/
COPY models/pretrained-musicnn/ ./models/pretrained-musicnn/

# The shipped committee stays in the image; users, data and caches live on the volumes.
ENV MER_MODELS_DIR=/models \
    MER_DATA_DIR=/data \
    MER_PRETRAINED_DIR=/app/models/pretrained \
    MER_CACHE_DIR=/data/.cache \
    MER_SHARED_DATA=/shared \
    MPLCONFIGDIR=/tmp/matplotlib

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
