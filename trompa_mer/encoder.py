"""Spectrogram encoders pre-trained without labels (SCAE, CPC) for music emotion transfer.

After the language-sensitive MER system (ICASSP 2021; docs/speech_encoders.md). Input: log-mel
patches (`trompa_mer.logmel`, 128 bands x 31 frames), normalised per mel band with statistics
of the pre-training data (kept in the encoder as buffers and in its manifest).

- `ConvEncoder(width)`: input batch norm; three blocks of two 3x3 conv + batch norm + ReLU at
  w, 2w, 4w filters (the paper: w = 32), each followed by max-pooling along frequency (4,1),
  (4,1), (2,1) and dropout 0.25; a final (2,1) max-pool. Output (4w, 2, 31), flattened.
- `PatchEncoder(method, width)`: what transfers. SCAE: the conv encoder (embedding = the
  flattened 248w values). CPC: the conv encoder -> dense 256 -> batch norm -> dense 256
  (embedding = the 256 values the contrastive loss is computed on).
- `SCAE`: denoising autoencoder: 0.3 N(0,1) added to the normalised patch, mirrored decoder
  (upsampling + the same conv blocks), MSE against the clean normalised patch.
- `CPC`: a GRU(256) over the embeddings of 4 consecutive patches predicts the next 2 (one
  linear map per step); InfoNCE with the other sequences of the batch as negatives.
- `pretrain(...)`: the training loop (Adam, amsgrad, lr 1e-3), per-epoch CSV log, resumable
  checkpoints, the final encoder as weights (`encoder.pt`) + checksummed manifest
  (`encoder.json`); `load_encoder(folder)`.
"""
from __future__ import annotations

import csv
import io
import json
import math
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import atomic, checksummed, logmel
from .errors import MERError
from .finite import check_loss, check_tensors, first_non_finite
from .net_bounds import MAX_WIDTH, check_weights_fit

METHODS = ("scae", "cpc")
FORMAT_VERSION = 1
MANIFEST = "encoder.json"
WEIGHTS = "encoder.pt"
CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
NOISE_STD = 0.3
DROPOUT = 0.25
CPC_DIM = 256
CPC_PAST = 4
CPC_FUTURE = 2
CPC_SEQUENCE = CPC_PAST + CPC_FUTURE
POOLS = ((4, 1), (4, 1), (2, 1))
FINAL_POOL = (2, 1)
HELDOUT_FRACTION = 0.05
DEFAULT_BATCH = {"scae": 64, "cpc": 16}
LR = 1e-3


def resolve_device(device: str | None = "auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise MERError(f"--device: expected auto, cpu or cuda[:N], got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MERError(f"--device: {device!r} asked for, but torch sees no CUDA device here")
    return dev


def check_width(width) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not 1 <= width <= MAX_WIDTH:
        raise MERError(f"width: expected a whole number from 1 to {MAX_WIDTH} (filters of the first "
                       f"block), got {width!r}")
    return int(width)


def check_method(method) -> str:
    if method not in METHODS:
        raise MERError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    return method


# --- networks -------------------------------------------------------------------------------
def _conv(cin: int, cout: int) -> list:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


class ConvEncoder(nn.Module):
    """Normalised (batch, 1, 128, 31) -> (batch, 4w, 2, 31)."""

    def __init__(self, width: int):
        super().__init__()
        w = check_width(width)
        self.channels = (w, 2 * w, 4 * w)
        self.in_bn = nn.BatchNorm2d(1)
        layers, cin = [], 1
        for cout, pool in zip(self.channels, POOLS):
            layers += _conv(cin, cout) + _conv(cout, cout) + [nn.MaxPool2d(pool), nn.Dropout(DROPOUT)]
            cin = cout
        layers.append(nn.MaxPool2d(FINAL_POOL))
        self.blocks = nn.Sequential(*layers)
        bands = logmel.N_MELS
        for pool in POOLS + (FINAL_POOL,):
            bands //= pool[0]
        self.out_shape = (self.channels[-1], bands, logmel.PATCH_FRAMES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.in_bn(x))


class Decoder(nn.Module):
    """(batch, 4w, 2, 31) -> (batch, 1, 128, 31): the encoder mirrored (upsampling for pooling)."""

    def __init__(self, width: int):
        super().__init__()
        w = check_width(width)
        layers = [nn.Upsample(scale_factor=FINAL_POOL)]
        cin = 4 * w
        for cout, pool in zip((4 * w, 2 * w, w), POOLS[::-1]):
            layers += _conv(cin, cout) + _conv(cout, cout) + [nn.Upsample(scale_factor=pool)]
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.blocks = nn.Sequential(*layers)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.blocks(h)


class PatchEncoder(nn.Module):
    """Raw log-mel patches (batch, 128, 31) -> embeddings (batch, embed_dim); see the module doc."""

    def __init__(self, method: str, width: int, mean=None, std=None):
        super().__init__()
        self.method, self.width = check_method(method), check_width(width)
        self.conv = ConvEncoder(width)
        c, b, t = self.conv.out_shape
        self.conv_dim = c * b * t
        if method == "cpc":
            self.project = nn.Sequential(nn.Linear(self.conv_dim, CPC_DIM), nn.BatchNorm1d(CPC_DIM),
                                         nn.Linear(CPC_DIM, CPC_DIM))
            self.embed_dim = CPC_DIM
        else:
            self.project = nn.Identity()
            self.embed_dim = self.conv_dim
        mean = torch.zeros(logmel.N_MELS) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        std = torch.ones(logmel.N_MELS) if std is None else torch.as_tensor(std, dtype=torch.float32)
        self.register_buffer("band_mean", mean.clone().reshape(logmel.N_MELS))
        self.register_buffer("band_std", std.clone().reshape(logmel.N_MELS))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 128, 31) raw log-mel -> (batch, 1, 128, 31) per-band standardised."""
        return ((x - self.band_mean[:, None]) / self.band_std[:, None]).unsqueeze(1)

    def embed_normalised(self, xn: torch.Tensor) -> torch.Tensor:
        return self.project(self.conv(xn).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_normalised(self.normalise(x))


def calibrate_batch_norm(encoder: PatchEncoder, patches: np.ndarray, batch: int = 256) -> PatchEncoder:
    """Estimate every batch-norm layer's running statistics on `patches` (raw log-mel, (n, 128,
    31)) without changing a weight: the cumulative mean and variance over batches, as training
    mode would accumulate them, with dropout off. For a randomly initialised encoder, whose
    statistics have never seen data. Its layers in inference mode then use the initial
    statistics (mean 0, variance 1), so the default initialisation, which does not preserve
    the variance, shrinks the embeddings layer by layer: a random CPC encoder's are about 6e-4
    per dimension. Standardised for the heads, such embeddings are moved by dozens of their
    standard deviations by one fine-tuning step at lr 5e-5, and the heads collapse onto one
    class (docs/speech_encoders.md). Returns the encoder, in inference mode."""
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if len(patches) < 2:
        raise MERError(f"batch-norm calibration: expected at least 2 patches, got {len(patches)}")
    momenta = [m.momentum for m in norms]
    encoder.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all batches, not an exponential one
        m.train()
    device = next(encoder.parameters()).device
    try:
        with torch.no_grad():  # not a decorator: mutmut leaves decorated functions unmutated
            for i in range(0, len(patches), batch):
                chunk = patches[i:i + batch]
                if len(chunk) < 2:
                    continue  # batch norm cannot take statistics of one patch
                encoder(torch.as_tensor(chunk, dtype=torch.float32, device=device))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        encoder.eval()
    return encoder


class SCAE(nn.Module):
    def __init__(self, width: int, mean=None, std=None):
        super().__init__()
        self.encoder = PatchEncoder("scae", width, mean, std)
        self.decoder = Decoder(width)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """MSE between the reconstruction of the noisy patch and the clean normalised patch."""
        clean = self.encoder.normalise(x)
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype).to(clean.device)
        recon = self.decoder(self.encoder.conv(clean + NOISE_STD * noise))
        return nn.functional.mse_loss(recon, clean)


class CPC(nn.Module):
    def __init__(self, width: int, mean=None, std=None):
        super().__init__()
        self.encoder = PatchEncoder("cpc", width, mean, std)
        self.gru = nn.GRU(CPC_DIM, CPC_DIM, batch_first=True)
        self.predictors = nn.ModuleList(nn.Linear(CPC_DIM, CPC_DIM) for _ in range(CPC_FUTURE))

    def loss(self, sequences: torch.Tensor, generator=None) -> torch.Tensor:
        """InfoNCE over a batch of (batch, 6, 128, 31) patch sequences: for each sequence and
        future step k the positive is its own k-th future embedding, the negatives are the k-th
        future embeddings of the other sequences in the batch. Mean over the steps."""
        n = sequences.shape[0]
        if n < 2:
            raise MERError("CPC: a batch needs at least 2 sequences (the negatives come from the batch)")
        z = self.encoder(sequences.flatten(0, 1)).reshape(n, CPC_SEQUENCE, CPC_DIM)
        _, context = self.gru(z[:, :CPC_PAST])
        context = context[-1]  # (n, 256)
        target = torch.arange(n, device=z.device)
        total = 0.0
        for k, predictor in enumerate(self.predictors):
            logits = predictor(context) @ z[:, CPC_PAST + k].T  # (n, n): row i, candidate j
            total = total + nn.functional.cross_entropy(logits, target)
        return total / CPC_FUTURE


def make_model(method: str, width: int, mean=None, std=None) -> nn.Module:
    return (SCAE if check_method(method) == "scae" else CPC)(width, mean, std)


# --- training examples from frame streams ---------------------------------------------------
def patch_grid(n_frames: int) -> np.ndarray:
    return logmel.patch_starts(n_frames)


def sequence_starts(n_frames: int) -> np.ndarray:
    """Start frames of CPC sequences: 6 patches at the patch hop (15 frames), on the patch grid."""
    span = (CPC_SEQUENCE - 1) * logmel.PATCH_HOP + logmel.PATCH_FRAMES
    if n_frames < span:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - span + 1, logmel.PATCH_HOP, dtype=np.int64)


def take_sequences(frames: np.ndarray, starts) -> np.ndarray:
    """(len(starts), 6, 128, 31)."""
    offsets = np.arange(CPC_SEQUENCE) * logmel.PATCH_HOP
    flat = logmel.take_patches(frames, (np.asarray(starts)[:, None] + offsets[None, :]).ravel())
    return flat.reshape(len(starts), CPC_SEQUENCE, logmel.N_MELS, logmel.PATCH_FRAMES)


def epoch_items(method: str, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Start frames for one training epoch, shuffled. SCAE: every patch once. CPC: one sequence
    in every 6 grid positions (so each patch is seen about once), with a random phase."""
    if method == "scae":
        return rng.permutation(patch_grid(n_frames))
    starts = sequence_starts(n_frames)
    phase = int(rng.integers(0, CPC_SEQUENCE))
    return rng.permutation(starts[phase::CPC_SEQUENCE] if len(starts) > phase else starts)


def heldout_items(method: str, n_frames: int) -> np.ndarray:
    if method == "scae":
        return patch_grid(n_frames)
    return sequence_starts(n_frames)[::CPC_SEQUENCE]


def _batch(method, frames, starts, device) -> torch.Tensor:
    data = logmel.take_patches(frames, starts) if method == "scae" else take_sequences(frames, starts)
    return torch.from_numpy(data).to(device)


def _batches(items: np.ndarray, size: int, min_size: int) -> list:
    out = [items[i:i + size] for i in range(0, len(items), size)]
    if len(out) > 1 and len(out[-1]) < min_size:
        out[-2] = np.concatenate([out[-2], out.pop()])
    return [b for b in out if len(b) >= min_size]


def heldout_files(names, fraction: float = HELDOUT_FRACTION) -> list:
    """The fixed held-out files: the ceil(5 %) of names with the smallest sha1 (none when fewer
    than 2 files), independent of the seed, so every run of a folder holds out the same files."""
    import hashlib

    names = list(names)
    if len(names) < 2:
        return []
    count = max(1, int(math.ceil(fraction * len(names))))
    return sorted(sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())[:count])


@torch.no_grad()
def evaluate(model, method: str, frames: np.ndarray, batch_size: int, device, seed: int = 0) -> float:
    """Mean loss over the held-out items in fixed batches, inference mode, fixed noise."""
    items = heldout_items(method, frames.shape[1])
    batches = _batches(items, batch_size, 2 if method == "cpc" else 1)
    if not batches:
        return math.nan
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    total = sum(float(model.loss(_batch(method, frames, b, device), generator)) * len(b) for b in batches)
    return total / sum(len(b) for b in batches)


# --- checkpoints --------------------------------------------------------------------------------
def _write_torch(path: Path, obj) -> None:
    with atomic.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _load_torch(path: Path, what: str, data: bytes | None = None):
    """torch.load(weights_only=True) of `path`, or of `data` (the file's verified bytes) when given."""
    try:
        return torch.load(path if data is None else io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, KeyError, TypeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MERError(f"{path}: cannot load {what} ({first[:160]}); expected a file written by "
                       "pretrain_encoder.py") from None


def _log_text(history: list) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["epoch", "train_loss", "heldout_loss", "seconds"])
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def pretrain(method: str, train: np.ndarray, heldout: np.ndarray, out_dir, width: int = 8,
             epochs: int = 10, batch_size: int | None = None, seed: int = 0, device="auto",
             progress: bool = True, command: str = "", data_summary: dict | None = None,
             max_batches: int | None = None) -> tuple[PatchEncoder, dict]:
    """Pre-train an encoder on the frame streams `train` and `heldout` ((128, frames) log-mel).

    Writes into `out_dir`: `checkpoint.pt` after every epoch (model, optimizer, epoch, RNG
    states, the run's configuration and log; atomic), `log.csv` (epoch, train loss, held-out
    loss, seconds), and at the end `encoder.pt` (the PatchEncoder's state dict) and
    `encoder.json` (checksummed manifest). Called again with the same configuration it
    resumes after the last saved epoch (a finished run is not trained again); with another
    configuration it refuses to resume (MERError naming the differences). `epochs` may grow:
    a finished run then continues. `max_batches` caps each epoch (benchmarks/tests only).
    """
    from tqdm.auto import tqdm

    method, width = check_method(method), check_width(width)
    if epochs < 1:
        raise MERError(f"epochs: expected a whole number >= 1, got {epochs!r}")
    batch_size = int(batch_size or DEFAULT_BATCH[method])
    if batch_size < (2 if method == "cpc" else 1):
        raise MERError(f"batch size: expected at least {2 if method == 'cpc' else 1} for {method}, got {batch_size}")
    train = np.asarray(train, dtype=np.float32)
    heldout = np.asarray(heldout, dtype=np.float32)
    if method == "cpc" and len(sequence_starts(train.shape[1])) < 2:
        raise MERError(f"cpc: the training audio is too short ({train.shape[1]} frames), expected at "
                       f"least {(CPC_SEQUENCE - 1) * logmel.PATCH_HOP + logmel.PATCH_FRAMES + logmel.PATCH_HOP} "
                       "frames (about 4 s) for two 6-patch sequences")
    if train.shape[1] == 0:
        raise MERError("pre-training: no training frames, expected audio")
    for part, frames in (("training", train), ("held-out", heldout)):
        bad = first_non_finite(frames)
        if bad is not None:
            raise MERError(f"pre-training: the {part} log-mel frames hold non-finite values (frame "
                           f"{bad % max(frames.shape[1], 1)}); expected finite audio")
    device = resolve_device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mean, std = logmel.band_stats(train)
    config = {"format": FORMAT_VERSION, "method": method, "width": width, "batch_size": batch_size,
              "seed": int(seed), "max_batches": max_batches, "front_end": logmel.settings(),
              "train_frames": int(train.shape[1]), "heldout_frames": int(heldout.shape[1]),
              "data_digest": checksummed.sha256_bytes(np.ascontiguousarray(train[:, ::97]).tobytes()
                                                      + np.ascontiguousarray(heldout[:, ::97]).tobytes())}

    torch.manual_seed(seed)
    model = make_model(method, width, mean, std).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, amsgrad=True)
    rng = np.random.default_rng(seed)
    noise = torch.Generator().manual_seed(seed + 1)
    history, start_epoch = [], 0
    checkpoint_path = out_dir / CHECKPOINT
    if checkpoint_path.is_file():
        state = _load_torch(checkpoint_path, "the pre-training checkpoint")
        try:
            saved = json.loads(state["config"])
        except (KeyError, TypeError, json.JSONDecodeError):
            raise MERError(f"{checkpoint_path}: config: expected the run's configuration; "
                           "delete the folder to start again") from None
        changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        if changed:
            detail = "; ".join(f"{k}: {saved.get(k)!r} then, {config.get(k)!r} now"
                               for k in changed if k not in ("front_end",))
            raise MERError(f"{checkpoint_path}: cannot resume: the command or its data changed "
                           f"({detail or ', '.join(changed)}); use another --out folder or delete "
                           "this one to start again")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
        history = json.loads(state["history"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        noise.set_state(state["noise_rng"])
        if start_epoch > epochs:
            raise MERError(f"{checkpoint_path}: cannot resume: {start_epoch} epochs already trained, "
                           f"--epochs {epochs} asks for fewer; use another --out folder")

    from .cost import RateNote

    bar = tqdm(range(start_epoch + 1, epochs + 1), desc=f"{method} w={width}", unit="epoch",
               disable=not progress, initial=start_epoch, total=epochs)
    note = None
    for epoch in bar:
        started = time.perf_counter()
        model.train()
        items = epoch_items(method, train.shape[1], rng)
        batches = _batches(items, batch_size, 2)
        if max_batches is not None:
            batches = batches[:max_batches]
        if note is None:  # the rate of the first batches, times every batch of the epochs to go
            note = RateNote(len(batches), f"to pre-train ({epochs - start_epoch} epochs of "
                            f"{len(batches)} batches on {device.type})", "batch",
                            repeats=epochs - start_epoch, warmup=1 if len(batches) > 4 else 0)
        total, count = 0.0, 0
        for b in tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not progress):
            optimizer.zero_grad(set_to_none=True)
            loss = model.loss(_batch(method, train, b, device), noise)
            value = check_loss(float(loss.detach()), f"{out_dir}: pre-training epoch {epoch}")
            loss.backward()
            optimizer.step()
            total, count = total + value * len(b), count + len(b)
            note.tick()
        train_loss = total / max(count, 1)
        held = evaluate(model, method, heldout, batch_size, device) if heldout.shape[1] else math.nan
        check_tensors(model.state_dict(), f"{out_dir}: pre-training epoch {epoch}")
        history.append({"epoch": epoch, "train_loss": round(train_loss, 6),
                        "heldout_loss": "" if math.isnan(held) else round(held, 6),
                        "seconds": round(time.perf_counter() - started, 3)})
        bar.set_postfix(train=f"{train_loss:.4f}", heldout=f"{held:.4f}")
        _write_torch(checkpoint_path, {
            "config": json.dumps(config), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "epoch": epoch, "history": json.dumps(history),
            "numpy_rng": json.dumps(rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
            "noise_rng": noise.get_state()})
        atomic.write_text(out_dir / LOG, _log_text(history))

    encoder = model.encoder.cpu().eval()
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    check_tensors(state, out_dir / WEIGHTS)
    _write_torch(out_dir / WEIGHTS, state)
    last = history[-1] if history else {}
    manifest = {
        "format": FORMAT_VERSION, "kind": "speech-pretrained spectrogram encoder",
        "method": method, "width": width, "embed_dim": encoder.embed_dim,
        "front_end": logmel.settings(),
        "normalisation": {"per": "mel band", "mean": [round(float(v), 6) for v in mean],
                          "std": [round(float(v), 6) for v in std]},
        "training": {"epochs": epochs, "batch_size": batch_size, "seed": int(seed), "optimizer":
                     f"Adam(amsgrad=True, lr={LR})", "noise_std": NOISE_STD if method == "scae" else None,
                     "final_train_loss": last.get("train_loss"), "final_heldout_loss": last.get("heldout_loss"),
                     "max_batches": max_batches},
        "command": command, "data": data_summary or {}, "torch_version": torch.__version__}
    checksummed.write_manifest(out_dir, MANIFEST, manifest, [WEIGHTS])
    return encoder, manifest


# --- loading --------------------------------------------------------------------------------------
def _check_manifest(manifest: dict, path) -> None:
    if manifest.get("format") != FORMAT_VERSION:
        raise MERError(f"{path}: format: expected {FORMAT_VERSION}, got {manifest.get('format')!r}")
    check_method(manifest.get("method"))
    try:
        check_width(manifest.get("width"))
    except MERError as err:
        raise MERError(f"{path}: {err}") from None
    if manifest.get("front_end") != logmel.settings():
        raise MERError(f"{path}: front_end: expected this toolkit's settings {logmel.settings()}, "
                       f"got {manifest.get('front_end')!r}")


def load_encoder(folder, device="cpu") -> tuple[PatchEncoder, dict]:
    """(PatchEncoder in eval mode, manifest) from a folder written by `pretrain`; every file is
    verified against the manifest's checksums first (MERError on a missing/changed file)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise MERError(f"{path}: missing (expected a folder written by pretrain_encoder.py)")
    manifest = atomic.read_json_object(path)
    for field in ("format", "method", "width", "front_end", "checksums"):
        if field not in manifest:
            raise MERError(f"{path}: field {field!r} missing")
    _check_manifest(manifest, path)
    checksums = manifest["checksums"]
    if not isinstance(checksums, dict) or WEIGHTS not in checksums:
        raise MERError(f"{path}: field 'checksums': expected an entry for {WEIGHTS}")
    contents: dict = {}  # each file read once: the weights are built from the bytes verified
    checksummed.read_files(folder, manifest, path, "encoder", contents)
    check_weights_fit(lambda: PatchEncoder(manifest["method"], manifest["width"]), len(contents[WEIGHTS]),
                      path, "width", manifest["width"], WEIGHTS)
    encoder = PatchEncoder(manifest["method"], manifest["width"])
    state = _load_torch(folder / WEIGHTS, "encoder weights", contents[WEIGHTS])
    if isinstance(state, dict):
        check_tensors(state, folder / WEIGHTS)
    try:
        encoder.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MERError(f"{folder / WEIGHTS}: weights do not fit a {manifest['method']} encoder of "
                       f"width {manifest['width']} ({first[:160]})") from None
    return encoder.to(resolve_device(device)).eval(), manifest


# --- pre-training data from folders -----------------------------------------------------------------
def select_files(source, hours_per_folder: float | None = None, max_files: int | None = None,
                 seed: int = 0, progress: bool = False, label: str = "") -> list:
    """The song ids of `source` (an AudioCache over one folder) kept for pre-training, decoding
    only what the choice needs: files in a seeded random order (a permutation of the sorted
    song ids), each decoded in turn (16 kHz, cached) to learn its length, kept while under
    `max_files` and `hours_per_folder` (at least one file); files shorter than one STFT window
    are passed over. So a limit decodes the kept files and at most one more (the file that
    would pass the hours), never the whole folder. Without limits: every file."""
    from tqdm.auto import tqdm

    names = list(source)
    order = np.random.default_rng(seed).permutation(len(names))
    frames_allowed = (None if hours_per_folder is None
                      else hours_per_folder * 3600 * logmel.SAMPLE_RATE / logmel.HOP_LENGTH)
    if frames_allowed is None and max_files is None:
        return names
    from .cost import RateNote

    most = min(len(names), max_files or len(names))
    kept, total = [], 0
    bar = tqdm(total=most, desc=f"choosing {label}", unit="file", disable=not progress)
    note = RateNote(most, f"to decode the chosen audio files of {label}", "file")
    for i in order:
        if max_files is not None and len(kept) >= max_files:
            break
        fresh = not source.is_cached(names[i])
        n_samples = len(source[names[i]])  # decodes this file only (then cached)
        if fresh:
            if frames_allowed is not None and kept:  # files still to come, from the mean length so far
                note.total = min(most, int(math.ceil(frames_allowed / (total / len(kept)))))
            note.tick()
        if n_samples < logmel.WIN_LENGTH:
            continue  # shorter than one window: nothing to learn from
        frames = logmel.n_frames_of(n_samples)
        if frames_allowed is not None and kept and total + frames > frames_allowed:
            break
        kept.append(names[i])
        total += frames
        bar.update(1)
    bar.close()
    return kept


def pretraining_data(folders, cache_dir, hours_per_folder: float | None = None,
                     max_files_per_folder: int | None = None, seed: int = 0,
                     progress: bool = False) -> tuple[np.ndarray, np.ndarray, dict]:
    """(train frames, held-out frames, summary) from folders of audio (each folder's chosen
    files' log-mel cached by `logmel.folder_stream`).

    Per folder: files chosen by `select_files` (a seeded random order, kept while under
    `hours_per_folder` and `max_files_per_folder`, so a mixture of two folders is half of each;
    only the chosen files, and at most one more, are decoded); of those, the fixed 5 %
    (`heldout_files`) are held out. Each part is the kept files' frames concatenated in name
    order (CPC sequences may cross from one file into the next one of the same folder)."""
    if not folders:
        raise MERError("--audio: expected at least one folder of audio")
    if hours_per_folder is not None and not hours_per_folder > 0:
        raise MERError(f"--hours-per-folder: expected a positive number of hours, got {hours_per_folder!r}")
    train_parts, held_parts, summary = [], [], {"folders": []}
    for folder in folders:
        source = logmel.folder_audio(folder, cache_dir)
        chosen = select_files(source, hours_per_folder, max_files_per_folder, seed, progress, Path(folder).name)
        stream = logmel.folder_stream(folder, cache_dir, progress=progress, songs=chosen)
        for i, name in enumerate(stream.names):
            if first_non_finite(stream.file_frames(i)) is not None:
                raise MERError(f"{folder}: song {name!r}: its log-mel frames hold non-finite values "
                               f"(cached in {cache_dir}); expected finite audio (delete the cache "
                               "and check the file)")
        lengths = np.diff(stream.offsets)
        kept = list(range(len(stream.names)))  # already the chosen files, in name order
        held_names = set(heldout_files(stream.names))
        train_idx = [i for i in kept if stream.names[i] not in held_names]
        held_idx = [i for i in kept if stream.names[i] in held_names]
        train_parts.append(stream.select(train_idx))
        held_parts.append(stream.select(held_idx))
        seconds = lambda idx: round(float(lengths[idx].sum()) * logmel.HOP_LENGTH / logmel.SAMPLE_RATE, 1)
        summary["folders"].append({"folder": str(Path(folder).resolve()), "files_available": len(source),
                                   "files_train": len(train_idx), "files_heldout": len(held_idx),
                                   "seconds_train": seconds(train_idx), "seconds_heldout": seconds(held_idx)})
    train = logmel.FrameStream.concat(train_parts).frames
    held = logmel.FrameStream.concat(held_parts).frames
    summary.update({"hours_per_folder": hours_per_folder, "max_files_per_folder": max_files_per_folder,
                    "selection_seed": int(seed),
                    "hours_train": round(train.shape[1] * logmel.HOP_LENGTH / logmel.SAMPLE_RATE / 3600, 4)})
    return train, held, summary
