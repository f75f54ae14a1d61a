"""The settings of an experiment: update strategies, presets and ExperimentConfig."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..consensus import MODES
from ..errors import MERError
from ..strategies import DEFAULT_STRATEGY, parse_strategy

UPDATES = ("batch", "cumulative")
DEFAULT_ALGORITHMS = ("gnb", "sgd", "xgb")
# what --algorithms may name: the classifiers, and the arousal/valence regression members
# (trompa_mer.regression; pre-trained on the other listeners' mean values, data.pretraining_targets)
ALGORITHMS = ("gnb", "sgd", "xgb", "sgd-av", "xgb-av")
# audio members (SongAudio input): run in a given committee with an audio source, never
# pre-trained per user by the simulator
AUDIO_ALGORITHMS = ("cnn", "encoder")


def refuse_audio_pretraining(algorithms) -> None:
    audio = [a for a in algorithms if a in AUDIO_ALGORITHMS]
    if audio:
        raise MERError(f"algorithms: the simulator does not pre-train audio members ({', '.join(audio)}); "
                       f"pre-train them outside it and give the committee with an audio source")


# Paths are relative to the shared data folder; the script resolves them.
PRESETS = {
    "trompa-benchmark": {
        "annotations": "trompa/annotations.json",
        "features": "trompa/track_features.csv",
        "min_annotations": 80,
        "pretrain": "leave-user-out",
        "queries": [4, 10],
        "iterations": [15, 6],
        "modes": list(MODES),
        "updates": list(UPDATES),
        "repeats": 3,
    },
}
# listeners outside the benchmark (20-79 songs), for choosing options before the benchmark sees
# them; q4x15 and q10x6 use up a small listener's pool early, which the runner allows
PRESETS["trompa-dev"] = {**PRESETS["trompa-benchmark"], "min_annotations": 20, "max_annotations": 79}


# --- configuration -------------------------------------------------------------------------
@dataclass
class ExperimentConfig:
    min_annotations: int = 80
    modes: list = field(default_factory=lambda: list(MODES))
    balanced: bool = False
    queries: list = field(default_factory=lambda: [4])
    iterations: list = field(default_factory=lambda: [15])
    updates: list = field(default_factory=lambda: ["batch"])
    repeats: int = 3
    seed: int = 1987
    test_size: float = 0.15
    pretrain: str | None = "leave-user-out"
    algorithms: list = field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    n_splits: int = 5
    pretrain_test_size: float = 0.2
    member_params: dict = field(default_factory=dict)
    users: list | None = None
    crowd_member: bool = False  # add the crowd-aware members (trompa_mer.crowd), pre-trained per user
    crowd_variant: str = "plain"  # a key of trompa_mer.crowd.CROWD_VARIANTS
    max_annotations: int | None = None  # only users with at most this many songs (a development set)
    # how mode mc ranks (trompa_mer.strategies); each non-default one runs as mode "mc:<name>"
    strategies: list = field(default_factory=lambda: [DEFAULT_STRATEGY])
    # mc/mix/balanced rank a random sample of this many of the remaining songs per round, as
    # get_hard_tracks.py --candidates does (None: every remaining song, as before)
    candidates: int | None = None

    def validate(self):
        if not self.modes or any(m not in MODES for m in self.modes):
            raise MERError(f"modes: expected some of {', '.join(MODES)}, got {self.modes}")
        if not self.updates or any(u not in UPDATES for u in self.updates):
            raise MERError(f"update: expected batch and/or cumulative, got {self.updates}")
        if len(self.queries) != len(self.iterations):
            raise MERError(f"-q/-e: give as many query counts as iteration counts "
                           f"(got {len(self.queries)} and {len(self.iterations)})")
        if any(int(v) < 1 for v in [*self.queries, *self.iterations]) or self.repeats < 1:
            raise MERError("-q, -e and --repeats: expected positive whole numbers")
        if self.candidates is not None and int(self.candidates) < 1:
            raise MERError(f"--candidates: expected a positive whole number of songs, got {self.candidates}")
        if not 0 < self.test_size < 1:
            raise MERError(f"test size: expected a fraction between 0 and 1, got {self.test_size}")
        from ..crowd import variant_options

        variant_options(self.crowd_variant)
        if self.max_annotations is not None and self.max_annotations < self.min_annotations:
            raise MERError(f"--max-annotations ({self.max_annotations}) is below --min-annotations "
                           f"({self.min_annotations})")
        refuse_audio_pretraining(self.algorithms or [])
        if not self.algorithms or any(a not in ALGORITHMS for a in self.algorithms):
            raise MERError(f"algorithms: expected some of {', '.join(ALGORITHMS)} (sgd-av, xgb-av: arousal/valence "
                           f"regression members), got {self.algorithms}")
        if len(set(self.modes)) != len(self.modes) or len(set(self.updates)) != len(self.updates):
            raise MERError("modes and update strategies: each at most once")
        if not self.strategies or len(set(self.strategies)) != len(self.strategies):
            raise MERError(f"--strategy: expected one or more different strategies, got {self.strategies}")
        for name in self.strategies:
            parse_strategy(name)
        if self.strategies != [DEFAULT_STRATEGY] and "mc" not in self.modes:
            raise MERError(f"--strategy {' '.join(self.strategies)}: strategies rank mode mc's songs; "
                           f"add mc to the modes (-m), got {' '.join(self.modes)}")

    def job_modes(self) -> list[str]:
        """The modes jobs run in: each mode, mode mc once per strategy ("mc" for consensus
        entropy, "mc:<strategy>" for the others)."""
        out = []
        for mode in self.modes:
            if mode == "mc":
                out += ["mc" if s == DEFAULT_STRATEGY else f"mc:{s}" for s in self.strategies]
            else:
                out.append(mode)
        return out

    def configs(self) -> list[tuple[str, int, int]]:
        return [(f"q{q}x{e}", int(q), int(e)) for q, e in zip(self.queries, self.iterations)]

    def fingerprint(self) -> dict:
        """What must match for a resumed run to continue the same experiment (the default
        strategy alone is left out, so that runs begun before strategies existed resume)."""
        settings = asdict(self)
        if settings["strategies"] == [DEFAULT_STRATEGY]:
            del settings["strategies"]
        return json.loads(json.dumps(settings, default=str))
