"""Network sizes read from a file are checked before a network is built (issue 23, item 9).

A width in a metadata file (an encoder's encoder.json, a CNN or encoder member's .json) decides
how much memory building the network takes: a doctored one (10**6 filters) meant an
"unexpected" allocation failure, or gigabytes allocated before the weights were found not to
fit. A width is first bounded, then the network it describes is built on torch's "meta" device
(shapes only, no memory) and its state dict's size compared with the weights file's size: the
file holds every tensor of the state dict, so a file smaller than that cannot be this network.
"""
from __future__ import annotations

from .errors import MERError

MAX_WIDTH = 1024  # filters of a network's first block (the papers use 16..128)


def check_width_field(value, where, field: str, maximum: int = MAX_WIDTH) -> int:
    """`value` as a whole number in 1..maximum, else a MERError naming `where` and `field`."""
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= maximum:
        raise MERError(f"{where}: field {field!r} is {value!r}, expected a whole number from 1 to {maximum}")
    return int(value)


def weights_bytes(build) -> int:
    """Bytes of the state dict (parameters and persistent buffers) of the module `build()`
    makes, built without memory."""
    import torch

    with torch.device("meta"):
        module = build()
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def check_weights_fit(build, weights_size: int, where, field: str, value, weights_name: str) -> None:
    """Refuse, before building it for real, a network larger than its weights file."""
    need = weights_bytes(build)
    if need > weights_size:
        raise MERError(f"{where}: field {field!r} is {value!r}: a network that wide holds {need} bytes of "
                       f"weights, but {weights_name} has {weights_size} bytes (the field or the file was "
                       f"changed after it was saved)")
