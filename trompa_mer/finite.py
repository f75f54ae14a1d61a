"""Nothing non-finite in, nothing non-finite out (issue 23, item 4).

One NaN or infinite audio sample spreads through resampling, the log-mel front end and every
weight a training step touches: the loss becomes NaN, and a model of NaN weights gives NaN (or,
after normalisation, uniform) probabilities that look like an answer. These checks sit at the
boundaries, each raising one `MERError` line that names what was refused:

- `check_samples`: decoded audio (features.load_audio, audio_cache.decode_resampled and the
  16 kHz cache's reads);
- `check_loss`: a training loop's loss (encoder pre-training, encoder members, the CNN);
- `check_tensors` / `check_arrays`: weights before they are saved (torch state dicts, the
  numeric arrays of a scikit-learn model) and after an encoder is loaded;
- `check_proba`: probabilities before they are printed or written (predict_emotion).
"""
from __future__ import annotations

import numpy as np

from .errors import MERError


def first_non_finite(values) -> int | None:
    """Flat index of the first NaN or infinity in `values`, or None when all are finite (or
    the values are not floating point: integers are always finite)."""
    values = np.asarray(values)
    if values.dtype.kind not in "fc":
        return None
    bad = np.flatnonzero(~np.isfinite(values.ravel()))
    return int(bad[0]) if bad.size else None


def check_samples(samples, where) -> np.ndarray:
    """`samples` unchanged, or MERError naming `where` and the first non-finite sample."""
    index = first_non_finite(samples)
    if index is not None:
        flat = np.asarray(samples).ravel()
        raise MERError(f"{where}: audio holds non-finite samples (first: {flat[index]} at sample "
                       f"{index} of {flat.size}); expected finite audio (re-export or remove the file)")
    return samples


def check_loss(loss: float, where: str) -> float:
    """`loss`, or MERError when it is NaN or infinite (the training stops, nothing is saved)."""
    if not np.isfinite(loss):
        raise MERError(f"{where}: the training loss became {loss}; training stopped and nothing "
                       "was saved (non-finite input or a diverging learning rate)")
    return loss


def check_tensors(state: dict, where) -> dict:
    """A torch state dict unchanged, or MERError naming the first floating-point tensor that
    holds a NaN or an infinity."""
    import torch

    for name, tensor in state.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise MERError(f"{where}: weights {name!r} hold non-finite values (NaN or infinity); "
                           "refusing to save or use them")
    return state


def _arrays(obj, prefix: str):
    """(name, float array) pairs: an array, the items of a list or tuple, a float, or the
    fitted attributes (names ending in "_") of a scikit-learn estimator, recursively (a
    MultiOutputRegressor's `estimators_`)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            yield prefix, obj
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _arrays(item, f"{prefix}[{i}]")
    elif isinstance(obj, (float, np.floating)):
        yield prefix, np.asarray(obj)
    elif hasattr(obj, "get_params"):
        for key, value in vars(obj).items():
            if key.endswith("_"):
                yield from _arrays(value, f"{prefix}.{key}" if prefix else key)


def check_arrays(obj, where) -> None:
    """MERError when a fitted estimator (or array, or list of them) holds a NaN or infinity
    in a float attribute (coef_, intercept_, theta_, var_, a MultiOutputRegressor's
    estimators_, ...)."""
    for name, array in _arrays(obj, ""):
        if first_non_finite(array) is not None:
            raise MERError(f"{where}: weights {name or 'array'!r} hold non-finite values (NaN or "
                           "infinity); refusing to save or use them")


def check_proba(proba, names, where) -> np.ndarray:
    """(members, rows, 4) probabilities unchanged, or MERError naming the first member with a
    non-finite value."""
    proba = np.asarray(proba)
    for row, name in enumerate(names):
        if first_non_finite(proba[row]) is not None:
            raise MERError(f"{where}: member {name} gives non-finite probabilities (NaN); its "
                           "weights are not finite (rebuild the committee or the member)")
    if first_non_finite(proba) is not None:
        raise MERError(f"{where}: non-finite probabilities (NaN)")
    return proba
