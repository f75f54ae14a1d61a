"""A music-tagging CNN as a frozen front end: musicnn (Pons & Serra 2019), MSD model, in torch.

Why a port and not the `musicnn` package: the package needs TensorFlow 1.x-style graphs and
pins numpy < 1.17; the project runs on torch. The architecture below is the published
"musicnn" (musically motivated front end, dense mid end, temporal-pooling back end) as
described in the paper and its ISC-licensed release; the weights are the release's
Million-Song-Dataset checkpoint (`MSD_musicnn`), converted once by
`tools/convert_musicnn.py` to a plain `.npz` (read with `allow_pickle=False`). Its licence is
recorded in `trompa_mer/weights/MUSICNN_LICENSE`. `tests/test_musicnn.py` checks this port
against outputs recorded from the original TensorFlow model.

Input: 16 kHz mono audio → power mel spectrogram (512-point FFT, hop 256, 96 Slaney bands,
centred frames) → log10(1 + 10000·mel) → 3-s patches of 187 frames without overlap. Output per
patch: the 50 MSD tag probabilities, the 200-unit penultimate layer, and the 753-dimensional
max- and mean-pooled mid-end features.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .errors import MERError

SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s, the length the model was trained on
WEIGHTS = Path(__file__).with_name("weights") / "musicnn_msd.npz"
BN_EPSILON = 1e-3  # TensorFlow's batch-normalisation default, used in training

MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
    "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill",
    "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic", "experimental",
    "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening", "sexy",
    "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop",
    "sad", "House", "happy")


@functools.lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(frames, 96) float32 log-compressed mel power of 16 kHz mono samples."""
    import torch

    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise MERError(f"audio: expected a non-empty 1-D array of samples, got shape {x.shape}")
    with torch.no_grad():
        spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x)), N_FFT, hop_length=HOP_LENGTH,
                          window=torch.hann_window(N_FFT), center=True, pad_mode="constant",
                          return_complex=True).abs() ** 2
        mel = (torch.from_numpy(_mel_basis()) @ spec).numpy().T
    # The release rounds the mel power to float16 before the log; so do we, to feed the
    # network what it was trained on.
    return np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1).astype(np.float32)


def patches(mel: np.ndarray) -> np.ndarray:
    """(n, 187, 96) consecutive 3-s patches; a clip shorter than one patch is repeated."""
    if mel.shape[0] < PATCH_FRAMES:
        mel = np.tile(mel, (int(np.ceil(PATCH_FRAMES / mel.shape[0])), 1))
    n = mel.shape[0] // PATCH_FRAMES
    return np.ascontiguousarray(mel[:n * PATCH_FRAMES].reshape(n, PATCH_FRAMES, N_MELS))


def build_network(weights: dict):
    """The musicnn graph as a torch module with the release's weights (inference only)."""
    import torch
    import torch.nn.functional as F

    w = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in weights.items()}

    def bn(x, name, dim):
        shape = [1] * x.dim()
        shape[dim] = -1
        mean, var = w[f"{name}/moving_mean"].view(shape), w[f"{name}/moving_variance"].view(shape)
        gamma, beta = w[f"{name}/gamma"].view(shape), w[f"{name}/beta"].view(shape)
        return (x - mean) / torch.sqrt(var + BN_EPSILON) * gamma + beta

    def conv2d(x, name, padding):
        # TensorFlow kernels are (height, width, in, out); torch wants (out, in, height, width).
        kernel = w[f"{name}/kernel"].permute(3, 2, 0, 1)
        return F.relu(F.conv2d(F.pad(x, padding), kernel, w[f"{name}/bias"]))

    def same_time_padding(k):
        # TensorFlow's "same" puts the extra row of an even kernel after the input.
        return (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2)

    class MusiCNN(torch.nn.Module):
        def forward(self, x):  # x: (batch, 187, 96)
            x = bn(x.unsqueeze(1), "batch_normalization", 1)  # (b, 1, time, freq)
            front = []
            for name, bn_name in (("conv2d", "batch_normalization_1"),
                                  ("conv2d_1", "batch_normalization_2")):
                y = bn(conv2d(x, name, (0, 0, 3, 3)), bn_name, 1)  # timbral: (7, part of freq)
                front.append(y.amax(dim=3))
            for name, bn_name, k in (("conv2d_2", "batch_normalization_3", 128),
                                     ("conv2d_3", "batch_normalization_4", 64),
                                     ("conv2d_4", "batch_normalization_5", 32)):
                y = bn(conv2d(x, name, same_time_padding(k)), bn_name, 1)  # temporal: (k, 1)
                front.append(y.amax(dim=3))
            front = torch.cat(front, dim=1)  # (b, 561, time)
            mid = [front]
            h = front
            for i, (name, bn_name) in enumerate((("conv2d_5", "batch_normalization_6"),
                                                 ("conv2d_6", "batch_normalization_7"),
                                                 ("conv2d_7", "batch_normalization_8"))):
                kernel = w[f"{name}/kernel"][:, :, 0, :].permute(2, 1, 0)  # (out, in, 7)
                y = bn(F.relu(F.conv1d(F.pad(h, (3, 3)), kernel, w[f"{name}/bias"])), bn_name, 1)
                h = y if i == 0 else y + h  # residual from the second layer on
                mid.append(h)
            features = torch.cat(mid, dim=1)  # (b, 753, time)
            max_pool, mean_pool = features.amax(dim=2), features.mean(dim=2)
            # TensorFlow flattens (feature, [max, mean]) with max and mean interleaved.
            pooled = torch.stack([max_pool, mean_pool], dim=2).reshape(x.shape[0], -1)
            pooled = bn(pooled, "batch_normalization_9", 1)
            penultimate = bn(F.relu(pooled @ w["dense/kernel"] + w["dense/bias"]),
                             "batch_normalization_10", 1)
            logits = penultimate @ w["dense_1/kernel"] + w["dense_1/bias"]
            return {"tags": torch.sigmoid(logits), "penultimate": penultimate,
                    "max_pool": max_pool, "mean_pool": mean_pool}

    return MusiCNN().eval()


@functools.lru_cache(maxsize=1)
def network(weights_path: str = str(WEIGHTS)):
    """The network with the shipped weights, loaded once per process."""
    try:
        with np.load(weights_path, allow_pickle=False) as archive:
            weights = {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as err:
        raise MERError(f"{weights_path}: cannot read the musicnn weights ({err})") from None
    return build_network(weights)


def patch_outputs(samples: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    """Per-patch outputs (tags, penultimate, max_pool, mean_pool) of a 16 kHz clip."""
    import torch

    x = patches(log_mel(samples))
    net = network()
    outputs: dict[str, list] = {}
    with torch.no_grad():
        for start in range(0, len(x), batch):
            for name, value in net(torch.from_numpy(x[start:start + batch])).items():
                outputs.setdefault(name, []).append(value.numpy())
    return {name: np.concatenate(parts).astype(np.float32) for name, parts in outputs.items()}
