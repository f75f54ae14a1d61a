"""Every kind of committee member by its algorithm name: the one place that knows them all.

A committee folder names each member's algorithm in committee.json; loading asks this module
for the class. Kinds with heavy dependencies (the CNN: torch) are imported only when a
committee has such a member.
"""
from __future__ import annotations

from .errors import MERError
from .members import MEMBER_TYPES


def member_class(algorithm: str):
    """The member class for an algorithm name."""
    if algorithm in MEMBER_TYPES:
        return MEMBER_TYPES[algorithm]
    if algorithm in ("sgd-av", "xgb-av"):
        from .regression import REGRESSION_TYPES

        return REGRESSION_TYPES[algorithm]
    if algorithm == "crowd":
        from .crowd import CrowdMember

        return CrowdMember
    if algorithm == "cnn":
        try:
            from . import cnn
        except ImportError as err:
            raise MERError(f"member algorithm 'cnn' needs trompa_mer.cnn and torch ({err})") from None
        return cnn.CNNMember
    if algorithm == "encoder":
        try:
            from . import transfer
        except ImportError as err:
            raise MERError(f"member algorithm 'encoder' needs trompa_mer.transfer, torch and librosa ({err})") from None
        return transfer.EncoderMember
    if algorithm == "musicnn":
        try:
            from . import tagger
        except ImportError as err:
            raise MERError(f"member algorithm 'musicnn' needs trompa_mer.tagger, torch and librosa ({err})") from None
        return tagger.MusicnnMember
    raise MERError(f"member algorithm: expected one of {', '.join(MEMBER_TYPES)}, sgd-av, xgb-av, crowd, cnn, "
                   f"encoder or musicnn, "
                   f"got {algorithm!r}")
