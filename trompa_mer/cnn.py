"""The short-chunk CNN committee member (Won et al., 2020).

Won, Ferraro, Bogdanov & Serra, "Evaluation of CNN-based automatic music tagging models",
SMC 2020: a mel spectrogram of a 59049-sample chunk (16 kHz, about 3.7 s), seven 3x3
conv/BN/ReLU/max-pool blocks, a global max-pool and two dense layers with sigmoid outputs.

Unlike the feature members (`trompa_mer.members`), this one reads audio: its input kind is
`"audio"` and the committee calls its song-level verbs

    fit_songs(song_ids, y, audio_source)
    update_songs(song_ids, y, audio_source, epochs=None)
    predict_proba_songs(song_ids, audio_source) -> (n_songs, 4)

where `audio_source` maps a song id to a 1-D float32 array of 16 kHz samples
(`trompa_mer.audio_cache.AudioCache`, or a plain dict). The feature verbs `fit`, `update` and
`predict_proba` raise TypeError instead of guessing what a feature row would mean.

Song probabilities: the sigmoid outputs are averaged over deterministic chunks that cover the
whole song, then each row is divided by its sum so that it is a distribution over the four
quadrants like every other member's (the network is trained multi-label, as in the paper, so
its four sigmoids need not sum to 1). Rows are joined to song ids by index, never by the order
in which a loader yields chunks.
"""
from __future__ import annotations

import copy
import csv
import io
import json
import math
import pickle
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import atomic
from .audio_cache import SAMPLE_RATE, get_audio
from .errors import MERError
from .finite import check_loss, check_tensors
from .net_bounds import check_weights_fit, check_width_field
from .members import SongAudio
from .quadrants import N_CLASSES, QUADRANTS

N_FFT = 512
HOP_LENGTH = 256
N_MELS = 128
F_MIN = 0.0
F_MAX = SAMPLE_RATE / 2
CHUNK_SAMPLES = 59049  # 3**10, the paper's input length
TOP_DB = 80.0  # dB floor below each example's own maximum
AMIN = 1e-10  # power floor before the logarithm
FORMAT_VERSION = 1


# --- front end ---------------------------------------------------------------------------
def hz_to_mel(hz):
    """HTK mel scale (the scale torchaudio's MelSpectrogram uses by default)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int = N_FFT // 2 + 1, f_min: float = F_MIN, f_max: float = F_MAX,
                   n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular mel filters, shape (n_freqs, n_mels), no area normalisation.

    Written here because torchaudio has no wheel on these machines. Same definition as the
    reference implementation's front end (torchaudio `melscale_fbanks`, HTK scale, norm=None):
    n_mels + 2 points evenly spaced in mel between f_min and f_max, converted to Hz, and
    triangles that are linear in Hz between neighbouring points.
    """
    bin_hz = np.linspace(0.0, sample_rate / 2, n_freqs)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges_hz)  # (n_mels + 1,)
    offsets = edges_hz[None, :] - bin_hz[:, None]  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(rising, falling))


class MelFrontEnd(nn.Module):
    """Waveform (batch, samples) -> log-mel spectrogram in dB (batch, n_mels, frames).

    Power STFT (periodic Hann window, centred frames, reflect padding) -> mel filters ->
    10*log10(max(power, AMIN)) -> values below (this example's maximum - top_db) raised to it.
    The floor is per example, so a clip's spectrogram never depends on the rest of its batch.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT,
                 hop_length: int = HOP_LENGTH, n_mels: int = N_MELS, f_min: float = F_MIN,
                 f_max: float | None = None, top_db: float | None = TOP_DB):
        super().__init__()
        self.n_fft, self.hop_length, self.top_db = n_fft, hop_length, top_db
        f_max = sample_rate / 2 if f_max is None else f_max
        fbank = mel_filterbank(n_fft // 2 + 1, f_min, f_max, n_mels, sample_rate)
        # Derived from the hyperparameters, so kept out of the saved state dict. Stored in
        # float64 and cast to the input's dtype, so a float64 input is exact end to end.
        self.register_buffer("window", torch.hann_window(n_fft, dtype=torch.float64), persistent=False)
        self.register_buffer("fbank", torch.from_numpy(fbank), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        window, fbank = self.window.to(waveform.dtype), self.fbank.to(waveform.dtype)
        spec = torch.stft(waveform, self.n_fft, hop_length=self.hop_length, window=window,
                          center=True, pad_mode="reflect", return_complex=True)
        power = spec.real.square() + spec.imag.square()  # (batch, freqs, frames)
        mel = torch.matmul(power.transpose(-1, -2), fbank).transpose(-1, -2)
        db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
        if self.top_db is not None:
            floor = db.amax(dim=(-2, -1), keepdim=True) - self.top_db
            db = torch.maximum(db, floor)
        return db


# --- network -----------------------------------------------------------------------------
class ConvBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )


class ShortChunkCNN(nn.Module):
    """Mel front end + 7 conv blocks + global max-pool + dense/BN/ReLU/dropout + dense/sigmoid.

    Channels are n, n, 2n, 2n, 2n, 2n, 4n with n = `n_channels` (128 in the paper), the dense
    layer has 4n units. `forward` returns logits; `torch.sigmoid` of them are the outputs.
    """

    def __init__(self, n_channels: int = 128, n_classes: int = N_CLASSES, **front_end):
        super().__init__()
        n = int(n_channels)
        self.front_end = MelFrontEnd(**front_end)
        self.spec_bn = nn.BatchNorm2d(1)
        widths = [n, n, 2 * n, 2 * n, 2 * n, 2 * n, 4 * n]
        self.blocks = nn.Sequential(*[ConvBlock(i, o) for i, o in zip([1] + widths[:-1], widths)])
        self.dense1 = nn.Linear(4 * n, 4 * n)
        self.dense_bn = nn.BatchNorm1d(4 * n)
        self.dropout = nn.Dropout(0.5)
        self.dense2 = nn.Linear(4 * n, n_classes)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.front_end(waveform).unsqueeze(1)  # (batch, 1, mels, frames)
        x = self.blocks(self.spec_bn(x))
        x = torch.amax(x, dim=(-2, -1))  # global max-pool -> (batch, 4n)
        x = self.dropout(torch.relu(self.dense_bn(self.dense1(x))))
        return self.dense2(x)


# --- chunks ------------------------------------------------------------------------------
def chunk_starts(n_samples: int, length: int = CHUNK_SAMPLES) -> np.ndarray:
    """Deterministic chunk starts that cover the whole song: ceil(n/length) evenly spaced
    chunks from the first sample to the last (neighbours overlap slightly); one chunk,
    zero-padded, when the song is shorter than a chunk."""
    if n_samples <= length:
        return np.zeros(1, dtype=np.int64)
    count = math.ceil(n_samples / length)
    return np.round(np.linspace(0, n_samples - length, count)).astype(np.int64)


def take_chunk(samples: np.ndarray, start: int, length: int = CHUNK_SAMPLES) -> np.ndarray:
    chunk = np.zeros(length, dtype=np.float32)
    piece = np.asarray(samples[start:start + length], dtype=np.float32)
    chunk[:piece.size] = piece
    return chunk


def random_chunk(samples: np.ndarray, rng: np.random.Generator, length: int = CHUNK_SAMPLES) -> np.ndarray:
    start = int(rng.integers(0, max(1, len(samples) - length + 1)))
    return take_chunk(samples, start, length)


class SongChunks(Dataset):
    """(song index, chunk) pairs for the deterministic chunks of each song."""

    def __init__(self, audio: Sequence[np.ndarray], length: int = CHUNK_SAMPLES):
        self.audio, self.length = audio, length
        self.items = [(i, int(s)) for i, a in enumerate(audio) for s in chunk_starts(len(a), length)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k):
        song, start = self.items[k]
        return song, torch.from_numpy(take_chunk(self.audio[song], start, self.length))


def _one_hot(y: np.ndarray) -> torch.Tensor:
    out = torch.zeros(len(y), N_CLASSES)
    out[torch.arange(len(y)), torch.as_tensor(y, dtype=torch.long)] = 1.0
    return out


# --- committee member --------------------------------------------------------------------
HYPERPARAMETERS = ("n_channels", "epochs", "update_epochs", "batch_size", "adam_lr", "sgd_lr",
                   "update_lr", "weight_decay", "adam_patience", "sgd_patience", "val_fraction",
                   "chunks_per_song", "update_chunks_per_song", "seed")


class CNNMember:
    """Short-chunk CNN as a committee member that reads audio by song id.

    Training (`fit_songs`), after the paper's solver: each epoch draws `chunks_per_song`
    random chunks from every training song; binary cross-entropy on one-hot quadrants; Adam
    (lr 1e-4, weight decay 1e-4), then, after `adam_patience` epochs without a better
    validation loss, the best weights are reloaded and training goes on with SGD (lr 1e-3,
    Nesterov momentum 0.9), whose learning rate drops tenfold twice, each time after
    `sgd_patience` epochs without improvement (the paper: 80 and 20 epochs of a 200-epoch run;
    left as None they scale to 40 % and 10 % of `epochs`). The validation loss is measured on
    `val_fraction` of the *training* songs (deterministic chunks), and the best epoch's weights
    are kept. With fewer than 10 songs there is no validation part and the last epoch is kept.

    Fine-tuning (`update_songs`): SGD at `update_lr` for `update_epochs` epochs on the labeled
    batch (which may lack quadrants). Batch-norm layers stay in inference mode, so a handful
    of songs does not overwrite the running statistics learned in pre-training.
    """

    algorithm = "cnn"
    input_kind = "audio"
    target_kind = "quadrant"
    margin_cacheable = False

    def __init__(self, n_channels: int = 128, epochs: int = 200, update_epochs: int = 10,
                 batch_size: int = 16, adam_lr: float = 1e-4, sgd_lr: float = 1e-3,
                 update_lr: float = 1e-3, weight_decay: float = 1e-4,
                 adam_patience: int | None = None, sgd_patience: int | None = None,
                 val_fraction: float = 0.1, chunks_per_song: int = 1,
                 update_chunks_per_song: int = 1, seed: int = 1987, device=None,
                 progress: bool = True, log_path=None):
        self.n_channels, self.epochs, self.update_epochs = int(n_channels), int(epochs), int(update_epochs)
        self.batch_size, self.adam_lr, self.sgd_lr = int(batch_size), float(adam_lr), float(sgd_lr)
        self.update_lr, self.weight_decay = float(update_lr), float(weight_decay)
        self.adam_patience, self.sgd_patience = adam_patience, sgd_patience
        self.val_fraction, self.chunks_per_song = float(val_fraction), int(chunks_per_song)
        self.update_chunks_per_song, self.seed = int(update_chunks_per_song), int(seed)
        self.device = torch.device(device) if device else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.progress, self.log_path = progress, log_path
        self.model_: ShortChunkCNN | None = None
        self.history_: list[dict] = []
        self.n_updates_ = 0
        self._rng = np.random.default_rng(self.seed)

    # --- helpers ----------------------------------------------------------------------------
    def hyperparameters(self) -> dict:
        return {name: getattr(self, name) for name in HYPERPARAMETERS}

    def _new_model(self) -> ShortChunkCNN:
        torch.manual_seed(self.seed)
        return ShortChunkCNN(self.n_channels).to(self.device)

    def _require_model(self) -> ShortChunkCNN:
        if self.model_ is None:
            raise MERError("CNN member: not trained yet; call fit_songs or load a saved member first")
        return self.model_

    @staticmethod
    def _labels(song_ids, y) -> tuple[list[str], np.ndarray]:
        ids = [str(s) for s in song_ids]
        labels = np.asarray(y)
        if labels.shape != (len(ids),):
            raise MERError(f"CNN member: labels: expected one quadrant per song ({len(ids)}), "
                           f"got shape {labels.shape}")
        if len(ids) == 0:
            raise MERError("CNN member: song_ids: expected at least one labeled song, got none")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= N_CLASSES:
            raise MERError(f"CNN member: labels: expected quadrant codes 0..{N_CLASSES - 1}, "
                           f"got {np.unique(labels)[:8].tolist()}")
        return ids, labels.astype(np.int64)

    def _train_epoch(self, model, optimizer, audio, labels, chunks_per_song, freeze_bn=False) -> float:
        """One pass of random chunks over the songs; returns the mean batch loss."""
        model.train()
        if freeze_bn:
            for module in model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        n_draws = len(audio) * chunks_per_song
        # Batch norm in training mode cannot normalise a batch of one chunk.
        n_draws = max(n_draws, 1 if freeze_bn else 2)
        order = np.resize(self._rng.permutation(len(audio)), n_draws)
        batches = [order[i:i + self.batch_size] for i in range(0, n_draws, self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1 and not freeze_bn:
            batches[-2] = np.concatenate([batches[-2], batches.pop()])
        loss_fn = nn.BCEWithLogitsLoss()
        total = 0.0
        for batch in batches:
            x = torch.from_numpy(np.stack([random_chunk(audio[i], self._rng) for i in batch]))
            target = _one_hot(labels[batch]).to(self.device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x.to(self.device)), target)
            check_loss(float(loss.detach()), "cnn member")
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        return total / len(batches)

    @torch.no_grad()
    def _song_sigmoid(self, model, audio: Sequence[np.ndarray], shuffle: bool = False) -> torch.Tensor:
        """Mean sigmoid output over each song's deterministic chunks, (n_songs, 4), CPU.

        Each chunk carries its song's index, and the sums are accumulated at that index, so
        the order in which the loader yields chunks (shuffled or not) cannot misalign rows.
        """
        model.eval()
        dataset = SongChunks(audio)
        loader = DataLoader(dataset, batch_size=max(self.batch_size, 1), shuffle=shuffle,
                            generator=torch.Generator().manual_seed(self.seed))
        sums = torch.zeros(len(audio), N_CLASSES, dtype=torch.float64)
        counts = torch.zeros(len(audio), dtype=torch.float64)
        for song_index, chunks in loader:
            out = torch.sigmoid(model(chunks.to(self.device))).double().cpu()
            sums.index_add_(0, song_index, out)
            counts.index_add_(0, song_index, torch.ones(len(song_index), dtype=torch.float64))
        return sums / counts[:, None]

    def _val_loss(self, model, audio, labels) -> float:
        mean_sigmoid = self._song_sigmoid(model, audio).clamp(1e-7, 1 - 1e-7)
        return float(nn.functional.binary_cross_entropy(mean_sigmoid, _one_hot(labels).double()))

    def _split_validation(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(labels)
        n_val = int(round(self.val_fraction * n))
        if n < 10 or n_val < 1:
            return np.arange(n), np.arange(0)
        from sklearn.model_selection import train_test_split

        counts = np.bincount(labels, minlength=N_CLASSES)
        stratify = labels if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() else None
        train, val = train_test_split(np.arange(n), test_size=n_val, random_state=self.seed,
                                      stratify=stratify)
        return np.sort(train), np.sort(val)

    def _write_log(self) -> None:
        if self.log_path is None or not self.history_:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.history_[0]))
        writer.writeheader()
        writer.writerows(self.history_)
        atomic.write_text(self.log_path, buffer.getvalue())

    # --- song-level verbs ---------------------------------------------------------------------
    def fit_songs(self, song_ids, y, audio_source: Mapping) -> "CNNMember":
        """Train from scratch on the songs' audio (see the class docstring for the schedule)."""
        from tqdm.auto import tqdm

        ids, labels = self._labels(song_ids, y)
        audio = [get_audio(audio_source, s) for s in ids]
        self._rng = np.random.default_rng(self.seed)
        train, val = self._split_validation(labels)
        train_audio, train_labels = [audio[i] for i in train], labels[train]
        val_audio, val_labels = [audio[i] for i in val], labels[val]

        model = self._new_model()
        adam_patience = self.adam_patience or max(1, round(0.4 * self.epochs))
        sgd_patience = self.sgd_patience or max(1, round(0.1 * self.epochs))
        stage, lr = "adam", self.adam_lr
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=self.weight_decay)
        best_loss, best_state, best_epoch, since_best = math.inf, None, 0, 0
        self.history_ = []
        bar = tqdm(range(1, self.epochs + 1), desc=f"cnn n={self.n_channels}", unit="epoch",
                   disable=not self.progress)
        for epoch in bar:
            started = time.perf_counter()
            train_loss = self._train_epoch(model, optimizer, train_audio, train_labels, self.chunks_per_song)
            val_loss = self._val_loss(model, val_audio, val_labels) if len(val) else math.nan
            improved = len(val) > 0 and val_loss < best_loss
            if improved:
                best_loss, best_epoch, since_best = val_loss, epoch, 0
                best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            else:
                since_best += 1
            self.history_.append({
                "epoch": epoch, "stage": stage, "lr": lr, "train_loss": round(train_loss, 6),
                "val_loss": round(val_loss, 6) if len(val) else "", "best_epoch": best_epoch or "",
                "seconds": round(time.perf_counter() - started, 3)})
            self._write_log()
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", stage=stage)
            # The paper's schedule: on a plateau, reload the best weights and switch/drop.
            if len(val) and best_state is not None and stage != "sgd_3":
                patience = adam_patience if stage == "adam" else sgd_patience
                if since_best >= patience:
                    model.load_state_dict(best_state)
                    since_best = 0
                    if stage == "adam":
                        stage, lr = "sgd_1", self.sgd_lr
                        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                                                    nesterov=True, weight_decay=self.weight_decay)
                    else:
                        stage = "sgd_2" if stage == "sgd_1" else "sgd_3"
                        lr = lr / 10
                        for group in optimizer.param_groups:
                            group["lr"] = lr
        if best_state is not None:
            model.load_state_dict(best_state)
        self.model_ = model
        self.best_epoch_ = best_epoch or self.epochs
        self.n_updates_ = 0
        return self

    def update_songs(self, song_ids, y, audio_source: Mapping, epochs: int | None = None) -> "CNNMember":
        """Fine-tune on a labeled batch (it may lack some quadrants) for `epochs` epochs."""
        model = self._require_model()
        ids, labels = self._labels(song_ids, y)
        audio = [get_audio(audio_source, s) for s in ids]
        epochs = self.update_epochs if epochs is None else int(epochs)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.update_lr, momentum=0.9,
                                    nesterov=True, weight_decay=self.weight_decay)
        for _ in range(epochs):
            self._train_epoch(model, optimizer, audio, labels, self.update_chunks_per_song, freeze_bn=True)
        model.eval()
        self.n_updates_ += 1
        return self

    def predict_sigmoid_songs(self, song_ids, audio_source: Mapping, shuffle: bool = False) -> np.ndarray:
        """Mean sigmoid outputs per song, (n_songs, 4), rows in the order of `song_ids`."""
        model = self._require_model()
        audio = [get_audio(audio_source, str(s)) for s in song_ids]
        if not audio:
            return np.zeros((0, N_CLASSES))
        return self._song_sigmoid(model, audio, shuffle=shuffle).numpy()

    def predict_proba_songs(self, song_ids, audio_source: Mapping, shuffle: bool = False) -> np.ndarray:
        """Song probabilities (n_songs, 4): mean sigmoid over the song's chunks, each row
        divided by its sum (rows sum to 1). `shuffle` only exists to prove the alignment."""
        sig = np.clip(self.predict_sigmoid_songs(song_ids, audio_source, shuffle), 1e-7, None)
        return sig / sig.sum(axis=1, keepdims=True)

    def predict_chunks(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One song's deterministic chunks: (start times in seconds, (n_chunks, 4) rows summing to 1)."""
        model = self._require_model()
        model.eval()
        starts = chunk_starts(len(samples))
        x = torch.from_numpy(np.stack([take_chunk(samples, s) for s in starts]))
        with torch.no_grad():
            sig = torch.sigmoid(model(x.to(self.device))).double().cpu().numpy()
        sig = np.clip(sig, 1e-7, None)
        return starts / SAMPLE_RATE, sig / sig.sum(axis=1, keepdims=True)

    # --- the member protocol: X is a members.SongAudio (input kind "audio") ------------------
    @staticmethod
    def _song_audio(X):
        if not isinstance(X, SongAudio):
            raise MERError(f"cnn member: reads audio (input kind 'audio'): expected SongAudio(song "
                           f"ids, audio source), got {type(X).__name__}")
        return X

    def fit(self, X, y, sample_weight=None) -> "CNNMember":
        if sample_weight is not None:
            raise MERError("cnn member: sample weights are not supported")
        X = self._song_audio(X)
        return self.fit_songs(X.song_ids, y, X.source)

    def update(self, X, y) -> "CNNMember":
        X = self._song_audio(X)
        return self.update_songs(X.song_ids, y, X.source)

    def predict_proba(self, X) -> np.ndarray:
        X = self._song_audio(X)
        return self.predict_proba_songs(X.song_ids, X.source)

    def copy(self) -> "CNNMember":
        return copy.deepcopy(self)

    # --- persistence ----------------------------------------------------------------------------
    def save(self, path_without_suffix) -> list[str]:
        """Write `<path>.pt` (state dict) and `<path>.json` (hyperparameters); returns file names."""
        model = self._require_model()
        base = Path(path_without_suffix)
        weights, meta = base.with_name(base.name + ".pt"), base.with_name(base.name + ".json")
        state = check_tensors({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
        with atomic.atomic_path(weights) as tmp:
            torch.save(state, tmp)
        atomic.write_json(meta, {
            "algorithm": self.algorithm, "format": FORMAT_VERSION, "input_kind": self.input_kind,
            "classes": list(QUADRANTS), "sample_rate": SAMPLE_RATE, "n_fft": N_FFT,
            "hop_length": HOP_LENGTH, "n_mels": N_MELS, "chunk_samples": CHUNK_SAMPLES,
            "top_db": TOP_DB, "hyperparameters": self.hyperparameters(),
            "best_epoch": getattr(self, "best_epoch_", None), "n_updates": self.n_updates_,
            "torch_version": torch.__version__})
        return [weights.name, meta.name]

    @classmethod
    def load(cls, path_without_suffix, device=None) -> "CNNMember":
        base = Path(path_without_suffix)
        weights, meta = base.with_name(base.name + ".pt"), base.with_name(base.name + ".json")
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise MERError(f"{meta}: not valid JSON ({err.msg}); expected CNN member metadata") from None
        if info.get("algorithm") != cls.algorithm or info.get("format") != FORMAT_VERSION:
            raise MERError(f"{meta}: algorithm/format: expected 'cnn' format {FORMAT_VERSION}, "
                           f"got {info.get('algorithm')!r} format {info.get('format')!r}")
        params = info.get("hyperparameters", {})
        unknown = set(params) - set(HYPERPARAMETERS)
        if unknown:
            raise MERError(f"{meta}: hyperparameters: unexpected keys {sorted(unknown)}")
        check_width_field(params.get("n_channels", 128), meta, "n_channels")
        member = cls(**params, device=device, progress=False)
        check_weights_fit(lambda: ShortChunkCNN(member.n_channels), weights.stat().st_size if weights.is_file() else 0,
                          meta, "n_channels", member.n_channels, weights.name)
        model = ShortChunkCNN(member.n_channels)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise MERError(f"{weights}: cannot load CNN weights ({first}); "
                           "expected a state dict of this architecture") from None
        member.model_ = model.to(member.device).eval()
        member.best_epoch_ = info.get("best_epoch")
        member.n_updates_ = int(info.get("n_updates") or 0)
        return member


# --- pre-training on the committee's splits -------------------------------------------------
def song_splits_from_windows(window_song_ids, window_splits, song_ids):
    """Turn window-level (train, test) index splits (e.g. GroupShuffleSplit grouped by song)
    into index splits over `song_ids`, so the CNN trains on exactly the same songs."""
    window_song_ids = np.asarray(window_song_ids).astype(str)
    position = {s: i for i, s in enumerate(map(str, song_ids))}
    out = []
    for train, test in window_splits:
        out.append((np.array(sorted({position[s] for s in window_song_ids[train] if s in position})),
                    np.array(sorted({position[s] for s in window_song_ids[test] if s in position}))))
    return out


def pretrain_cnn_members(song_ids, y, audio_source: Mapping, splits, out_dir=None,
                         name_prefix: str = "cnn", **member_kwargs) -> list[dict]:
    """Train one CNNMember per (train_index, test_index) split over `song_ids`.

    Returns one dict per split: `name`, `member`, `f1_macro` and `accuracy` of the song-level
    argmax on the split's test songs, `n_train`, `n_test`. With `out_dir`, each member is saved
    as `<out_dir>/<name>` (.pt + .json) with its per-epoch log `<name>_log.csv`.
    """
    from sklearn.metrics import accuracy_score, f1_score

    ids = np.asarray([str(s) for s in song_ids])
    labels = np.asarray(y, dtype=np.int64)
    results = []
    for k, (train, test) in enumerate(splits):
        name = f"{name_prefix}_{k}"
        log_path = Path(out_dir) / f"{name}_log.csv" if out_dir is not None else None
        member = CNNMember(log_path=log_path, **member_kwargs)
        member.fit_songs(ids[train], labels[train], audio_source)
        result = {"name": name, "member": member, "n_train": len(train), "n_test": len(test)}
        if len(test):
            predicted = member.predict_proba_songs(ids[test], audio_source).argmax(axis=1)
            result["f1_macro"] = float(f1_score(labels[test], predicted, average="macro", zero_division=0))
            result["accuracy"] = float(accuracy_score(labels[test], predicted))
        if out_dir is not None:
            member.save(Path(out_dir) / name)
        results.append(result)
    return results
