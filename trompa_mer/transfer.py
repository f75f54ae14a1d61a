"""A speech-pretrained (or randomly initialised) encoder transferred to quadrant classification,
as a committee member that reads audio (docs/speech_encoders.md).

`TransferNet`: `encoder.PatchEncoder` -> flatten -> three dense layers (ReLU, dropout) -> three
heads: quadrant (4-way), arousal (2-way: Q1/Q2 high) and valence (2-way: Q1/Q4 positive); the
loss is the sum of the three cross-entropies. A song's probabilities are the mean of its 1 s
patches' quadrant softmax outputs.

`EncoderMember` (`algorithm = "encoder"`, `input_kind = "audio"`, X = `members.SongAudio`):
- `transfer="feature-extractor"` (FE): the encoder is frozen; every training patch is embedded
  once and only the dense layers and heads are trained (Adam, lr 1e-3).
- `transfer="full"`: FE first, then everything unfrozen (Adam, lr 5e-5), each epoch on
  `patches_per_song` randomly drawn patches of every song (the CPU budget). The encoder's
  weights are fine-tuned but its layers stay in inference mode (batch-norm statistics frozen,
  no dropout): the heads were trained on its inference-mode embeddings (updating the
  statistics and dropping units moved a randomly initialised encoder's embeddings off that
  scale and the heads to one class).
"""
from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import atomic, logmel
from .audio_cache import get_audio
from .encoder import PatchEncoder, check_method, check_width, load_encoder, resolve_device
from .errors import MERError
from .finite import check_loss, check_tensors
from .net_bounds import check_weights_fit
from .members import SongAudio
from .quadrants import N_CLASSES, QUADRANTS

FORMAT_VERSION = 1
TRANSFERS = ("feature-extractor", "full")
HIDDEN = (256, 128, 64)
DENSE_DROPOUT = 0.3
AROUSAL_HIGH = np.array([1, 1, 0, 0])  # Q1, Q2 high arousal
VALENCE_POSITIVE = np.array([1, 0, 0, 1])  # Q1, Q4 positive valence
HYPERPARAMETERS = ("transfer", "epochs", "full_epochs", "update_epochs", "patches_per_song",
                   "batch_size", "lr", "full_lr", "update_lr", "seed")


class Heads(nn.Module):
    """Embedding -> 3 dense layers with dropout -> (quadrant, arousal, valence) logits."""

    def __init__(self, embed_dim: int, hidden=HIDDEN):
        super().__init__()
        # the embeddings are standardised with the training patches' statistics (set_scale):
        # a frozen encoder's outputs (a random one's above all) can be on any scale
        self.register_buffer("embed_mean", torch.zeros(embed_dim))
        self.register_buffer("embed_std", torch.ones(embed_dim))
        layers, cin = [], embed_dim
        for h in hidden:
            layers += [nn.Linear(cin, h), nn.ReLU(), nn.Dropout(DENSE_DROPOUT)]
            cin = h
        self.dense = nn.Sequential(*layers)
        self.quadrant, self.arousal, self.valence = nn.Linear(cin, N_CLASSES), nn.Linear(cin, 2), nn.Linear(cin, 2)

    def set_scale(self, embeddings: torch.Tensor) -> None:
        self.embed_mean.copy_(embeddings.mean(dim=0))
        if len(embeddings) < 2:
            self.embed_std.fill_(1.0)
            return
        std = embeddings.std(dim=0)
        # floor: a dimension (nearly) constant on the training patches (a dead ReLU) must not
        # turn a tiny change on other songs, or after fine-tuning, into a huge input
        self.embed_std.copy_(std.clamp_min(max(0.1 * float(std.mean()), 1e-6)))

    def forward(self, e: torch.Tensor):
        h = self.dense((e - self.embed_mean) / self.embed_std)
        return self.quadrant(h), self.arousal(h), self.valence(h)


class TransferNet(nn.Module):
    def __init__(self, encoder: PatchEncoder):
        super().__init__()
        self.encoder = encoder
        self.heads = Heads(encoder.embed_dim)

    def forward(self, x: torch.Tensor):
        return self.heads(self.encoder(x))


def multitask_loss(outputs, y: torch.Tensor) -> torch.Tensor:
    q, a, v = outputs
    ce = nn.functional.cross_entropy
    arousal = torch.as_tensor(AROUSAL_HIGH, device=y.device)[y]
    valence = torch.as_tensor(VALENCE_POSITIVE, device=y.device)[y]
    return ce(q, y) + ce(a, arousal) + ce(v, valence)


def song_patches(song_ids, audio_source: Mapping) -> list:
    """Each song's log-mel patches, (n_patches, 128, 31) float32 per song."""
    return [logmel.patches(get_audio(audio_source, s)) for s in song_ids]


@torch.no_grad()
def embed_patches(encoder: PatchEncoder, patches: np.ndarray, device, batch: int = 256) -> torch.Tensor:
    encoder.eval()
    out = [encoder(torch.from_numpy(patches[i:i + batch]).to(device)).cpu()
           for i in range(0, len(patches), batch)]
    return torch.cat(out) if out else torch.zeros(0, encoder.embed_dim)


class EncoderMember:
    """An encoder transferred to the four quadrants; see the module docstring.

    `update` (a listener's answers) trains **only the dense layers and heads**, on the frozen
    embeddings of the answered songs' patches, for `update_epochs` epochs at `update_lr`: a
    listener gives a few labeled songs per round, far too few to move an encoder's thousands of
    convolution weights without forgetting what pre-training and the corpus taught it, and the
    embeddings are computed once, so a round costs about one forward pass per patch.
    """

    algorithm = "encoder"
    input_kind = "audio"
    target_kind = "quadrant"
    margin_cacheable = False

    def __init__(self, encoder: PatchEncoder | None = None, transfer: str = "feature-extractor",
                 epochs: int = 30, full_epochs: int = 5, update_epochs: int = 10,
                 patches_per_song: int = 4, batch_size: int = 64, lr: float = 1e-3,
                 full_lr: float = 5e-5, update_lr: float = 1e-4, seed: int = 1987, device=None,
                 progress: bool = False, encoder_info: dict | None = None):
        if transfer not in TRANSFERS:
            raise MERError(f"transfer: expected one of {', '.join(TRANSFERS)}, got {transfer!r}")
        self.transfer, self.epochs, self.full_epochs = transfer, int(epochs), int(full_epochs)
        self.update_epochs, self.patches_per_song = int(update_epochs), int(patches_per_song)
        self.batch_size, self.lr, self.full_lr = int(batch_size), float(lr), float(full_lr)
        self.update_lr, self.seed = float(update_lr), int(seed)
        self.device = resolve_device(device or "auto")
        self.progress = progress
        self.encoder_info = dict(encoder_info or {})
        self.net_: TransferNet | None = None
        if encoder is not None:
            torch.manual_seed(self.seed)
            self.net_ = TransferNet(copy.deepcopy(encoder)).to(self.device)
        self.n_updates_ = 0
        self.history_: list = []
        self._rng = np.random.default_rng(self.seed)

    @classmethod
    def from_folder(cls, encoder_dir, **kwargs) -> "EncoderMember":
        """A member on a saved encoder (`pretrain_encoder.py --out`)."""
        encoder, manifest = load_encoder(encoder_dir)
        info = {k: manifest.get(k) for k in ("method", "width", "command")}
        info["folder"] = str(Path(encoder_dir).resolve())
        info["weights_sha256"] = manifest["checksums"]["encoder.pt"]
        return cls(encoder, encoder_info=info, **kwargs)

    def hyperparameters(self) -> dict:
        return {k: getattr(self, k) for k in HYPERPARAMETERS}

    def _net(self) -> TransferNet:
        if self.net_ is None:
            raise MERError("encoder member: no encoder; build it with an encoder or load a saved member")
        return self.net_

    @staticmethod
    def _labels(song_ids, y):
        ids = [str(s) for s in song_ids]
        labels = np.asarray(y)
        if labels.shape != (len(ids),) or len(ids) == 0:
            raise MERError(f"encoder member: labels: expected one quadrant per song ({len(ids)}), got shape {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= N_CLASSES:
            raise MERError(f"encoder member: labels: expected quadrant codes 0..3, got {np.unique(labels)[:8].tolist()}")
        return ids, labels.astype(np.int64)

    # --- training --------------------------------------------------------------------------------
    def _train_heads(self, embeddings: torch.Tensor, labels: np.ndarray, epochs: int, lr: float) -> list:
        net = self._net()
        heads = net.heads
        optimizer = torch.optim.Adam(heads.parameters(), lr=lr)
        y = torch.as_tensor(labels, dtype=torch.long)
        losses = []
        for _ in range(epochs):
            heads.train()
            order = torch.from_numpy(self._rng.permutation(len(y)))
            total = 0.0
            for i in range(0, len(order), self.batch_size):
                b = order[i:i + self.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = multitask_loss(heads(embeddings[b].to(self.device)), y[b].to(self.device))
                check_loss(float(loss.detach()), "encoder member (dense layers and heads)")
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(b)
            losses.append(total / max(len(y), 1))
        heads.eval()
        return losses

    def fit_patches(self, patches: list, labels: np.ndarray, embeddings: torch.Tensor | None = None) -> "EncoderMember":
        """Train on per-song patch arrays (see the module docstring). `embeddings`: the frozen
        encoder's embeddings of all patches concatenated, when the caller has them already."""
        from tqdm.auto import tqdm

        net = self._net()
        self._rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        counts = np.array([len(p) for p in patches])
        patch_labels = np.repeat(labels, counts)
        if embeddings is None:
            embeddings = embed_patches(net.encoder, np.concatenate(patches), self.device)
        net.heads.set_scale(embeddings.to(self.device))
        self.history_ = [{"stage": "fe", "loss": l} for l in self._train_heads(embeddings, patch_labels, self.epochs, self.lr)]
        if self.transfer == "full" and self.full_epochs > 0:
            optimizer = torch.optim.Adam(net.parameters(), lr=self.full_lr)
            for _ in tqdm(range(self.full_epochs), desc="fine-tuning", unit="epoch", disable=not self.progress):
                songs = np.repeat(np.arange(len(patches)), self.patches_per_song)
                order = self._rng.permutation(songs)
                picks = [(s, int(self._rng.integers(0, counts[s]))) for s in order]
                # the encoder stays in inference mode (its batch-norm statistics, no dropout):
                # the heads were trained on its inference-mode embeddings, and with dropout
                # and batch norm training a randomly initialised encoder's embeddings left
                # that scale (loss 0.4 -> 99) and the heads fell to one class
                net.heads.train()
                net.encoder.eval()
                total = 0.0
                for i in range(0, len(picks), self.batch_size):
                    chunk = picks[i:i + self.batch_size]
                    if len(chunk) < 2:
                        continue  # batch norm cannot train on one patch
                    x = torch.from_numpy(np.stack([patches[s][k] for s, k in chunk])).to(self.device)
                    y = torch.as_tensor(labels[[s for s, _ in chunk]], dtype=torch.long, device=self.device)
                    optimizer.zero_grad(set_to_none=True)
                    loss = multitask_loss(net(x), y)
                    check_loss(float(loss.detach()), "encoder member (fine-tuning)")
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(chunk)
                self.history_.append({"stage": "full", "loss": total / max(len(picks), 1)})
        net.eval()
        self.n_updates_ = 0
        return self

    def fit_songs(self, song_ids, y, audio_source: Mapping) -> "EncoderMember":
        ids, labels = self._labels(song_ids, y)
        return self.fit_patches(cut_song_patches(ids, audio_source), labels)

    def update_songs(self, song_ids, y, audio_source: Mapping, epochs: int | None = None) -> "EncoderMember":
        net = self._net()
        ids, labels = self._labels(song_ids, y)
        patches = song_patches(ids, audio_source)
        embeddings = embed_patches(net.encoder, np.concatenate(patches), self.device)
        patch_labels = np.repeat(labels, [len(p) for p in patches])
        self._train_heads(embeddings, patch_labels, self.update_epochs if epochs is None else int(epochs),
                          self.update_lr)
        self.n_updates_ += 1
        return self

    # --- prediction ------------------------------------------------------------------------------
    @torch.no_grad()
    def patch_proba(self, patches: np.ndarray) -> np.ndarray:
        net = self._net().eval()
        out = [torch.softmax(net(torch.from_numpy(patches[i:i + 256]).to(self.device))[0].double(), 1).cpu()
               for i in range(0, len(patches), 256)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def predict_proba_embeddings(self, embeddings: torch.Tensor, counts) -> np.ndarray:
        """Song probabilities from the frozen encoder's patch embeddings (FE: the encoder is
        unchanged, so embeddings computed once serve every split); `counts` patches per song."""
        heads = self._net().heads.eval()
        proba = torch.cat([torch.softmax(heads(embeddings[i:i + 1024].to(self.device))[0].double(), 1).cpu()
                           for i in range(0, len(embeddings), 1024)]).numpy()
        bounds = np.concatenate([[0], np.cumsum(counts)]).astype(int)
        return np.stack([proba[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])]), proba

    def predict_proba_patches(self, patches: list) -> np.ndarray:
        """Mean patch probabilities per song, (n_songs, 4)."""
        if not patches:
            return np.zeros((0, N_CLASSES))
        counts = [len(p) for p in patches]
        proba = self.patch_proba(np.concatenate(patches))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return np.stack([proba[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])

    def predict_proba_songs(self, song_ids, audio_source: Mapping) -> np.ndarray:
        # a whole pool the first time is long work (decoding): a cost note when it is
        return self.predict_proba_patches(cut_song_patches(song_ids, audio_source))

    # --- the member protocol ---------------------------------------------------------------------
    @staticmethod
    def _song_audio(X) -> SongAudio:
        if not isinstance(X, SongAudio):
            raise MERError(f"encoder member: reads audio (input kind 'audio'): expected SongAudio(song "
                           f"ids, audio source), got {type(X).__name__}")
        return X

    def fit(self, X, y, sample_weight=None) -> "EncoderMember":
        if sample_weight is not None:
            raise MERError("encoder member: sample weights are not supported")
        X = self._song_audio(X)
        return self.fit_songs(X.song_ids, y, X.source)

    def update(self, X, y) -> "EncoderMember":
        X = self._song_audio(X)
        return self.update_songs(X.song_ids, y, X.source)

    def predict_proba(self, X) -> np.ndarray:
        X = self._song_audio(X)
        return self.predict_proba_songs(X.song_ids, X.source)

    def copy(self) -> "EncoderMember":
        return copy.deepcopy(self)

    # --- persistence -------------------------------------------------------------------------------
    def save(self, path_without_suffix) -> list:
        """`<path>.pt` (the whole network's state dict) and `<path>.json`; returns the names."""
        net = self._net()
        base = Path(path_without_suffix)
        weights, meta = base.with_name(base.name + ".pt"), base.with_name(base.name + ".json")
        state = check_tensors({k: v.detach().cpu() for k, v in net.state_dict().items()}, weights)
        with atomic.atomic_path(weights) as tmp:
            torch.save(state, tmp)
        atomic.write_json(meta, {
            "algorithm": self.algorithm, "format": FORMAT_VERSION, "input_kind": self.input_kind,
            "classes": list(QUADRANTS), "method": net.encoder.method, "width": net.encoder.width,
            "front_end": logmel.settings(), "hidden": list(HIDDEN), "encoder": self.encoder_info,
            "hyperparameters": self.hyperparameters(), "n_updates": self.n_updates_,
            "torch_version": torch.__version__})
        return [weights.name, meta.name]

    @classmethod
    def load(cls, path_without_suffix, device=None) -> "EncoderMember":
        base = Path(path_without_suffix)
        weights, meta = base.with_name(base.name + ".pt"), base.with_name(base.name + ".json")
        info = atomic.read_json_object(meta)
        if info.get("algorithm") != cls.algorithm or info.get("format") != FORMAT_VERSION:
            raise MERError(f"{meta}: algorithm/format: expected 'encoder' format {FORMAT_VERSION}, "
                           f"got {info.get('algorithm')!r} format {info.get('format')!r}")
        if info.get("front_end") != logmel.settings():
            raise MERError(f"{meta}: front_end: expected this toolkit's settings, got {info.get('front_end')!r}")
        params = info.get("hyperparameters") or {}
        unknown = set(params) - set(HYPERPARAMETERS)
        if unknown:
            raise MERError(f"{meta}: hyperparameters: unexpected keys {sorted(unknown)}")
        try:
            check_method(info.get("method")), check_width(info.get("width"))
        except MERError as err:
            raise MERError(f"{meta}: {err}") from None
        check_weights_fit(lambda: TransferNet(PatchEncoder(info["method"], info["width"])),
                          weights.stat().st_size if weights.is_file() else 0, meta, "width", info["width"],
                          weights.name)
        encoder = PatchEncoder(info["method"], info["width"])
        member = cls(encoder, device=device, encoder_info=info.get("encoder"), **params)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            member.net_.load_state_dict(state)
        except (RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise MERError(f"{weights}: cannot load encoder member weights ({first[:160]}); "
                           "expected a state dict of this architecture") from None
        member.net_.to(member.device).eval()
        member.n_updates_ = int(info.get("n_updates") or 0)
        return member


# --- pre-training members on a corpus's splits ------------------------------------------------------
def cut_song_patches(song_ids, audio_source: Mapping, what: str = "") -> list:
    """`song_patches` for a corpus: the same arrays, with a cost note (trompa_mer.cost) when the
    decoding and cutting measured on the first songs projects to long work or to a lot of
    memory (the patches, and a copy of a split's patches while a member embeds them)."""
    from .cost import RateNote

    ids = [str(s) for s in song_ids]
    # the first song pays for start-up (the mel filterbank, torch's first STFT): not in the rate
    note = RateNote(len(ids), f"to decode {len(ids)} songs{what} and cut their log-mel patches", "song",
                    warmup=1 if len(ids) > 4 else 0)
    out, n_bytes = [], 0
    for song in ids:
        out.append(logmel.patches(get_audio(audio_source, song)))
        n_bytes += out[-1].nbytes
        if not note.said:
            note.set_bytes(2 * n_bytes / len(out) * len(ids))
        note.tick()
    return out


def pretrain_encoder_members(song_ids, y, audio_source: Mapping, splits, encoder_dir,
                             name_prefix: str = "encoder", progress: bool = False, **member_kwargs) -> list:
    """One EncoderMember per (train index, test index) split over `song_ids`, each starting from
    the encoder in `encoder_dir`. Returns dicts: name, member, n_train, n_test, and on the
    split's test songs truth and predicted (quadrant codes, song-level argmax), f1_macro and
    accuracy. Patches are cut once per song. Cost notes (trompa_mer.cost) before long work:
    the decoding and cutting, then the members (rate of the first split)."""
    from sklearn.metrics import accuracy_score, f1_score
    from tqdm.auto import tqdm

    from .cost import RateNote

    ids = np.asarray([str(s) for s in song_ids])
    labels = np.asarray(y, dtype=np.int64)
    patches = cut_song_patches(ids, audio_source)
    splits = list(splits)
    transfer = member_kwargs.get("transfer", "feature-extractor")
    note = RateNote(len(splits), f"to train {len(splits)} encoder members ({transfer})", "member",
                    min_items=1, min_seconds=0.0)
    results = []
    for k, (train, test) in enumerate(tqdm(splits, desc="encoder members", unit="split", disable=not progress)):
        member = EncoderMember.from_folder(encoder_dir, **member_kwargs)
        member.fit_patches([patches[i] for i in train], labels[train])
        result = {"name": f"{name_prefix}_{k}", "member": member, "n_train": len(train), "n_test": len(test)}
        if len(test):
            predicted = member.predict_proba_patches([patches[i] for i in test]).argmax(axis=1)
            result.update(truth=labels[test], predicted=predicted)
            result["f1_macro"] = float(f1_score(labels[test], predicted, average="macro", zero_division=0))
            result["accuracy"] = float(accuracy_score(labels[test], predicted))
        results.append(result)
        note.tick()
    return results
