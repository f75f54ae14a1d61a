"""Offline personalization experiments: simulate real listeners answering queries.

Each listener of a multi-annotator dataset is simulated in turn: the committee asks for `q`
songs of the listener's pool per iteration (query modes from `consensus`), the listener
"answers" with their recorded labels, the committee is updated, and F1 is measured on a
held-out part of the listener's songs after every iteration.

Protocol (one *simulation* = user x repeat x mode x update x (q, e) configuration):
- users with at least `min_annotations` annotated songs that have features;
- per user and repeat, a fixed split of their songs, 85 % pool / 15 % test, identical for every
  mode, update strategy and configuration (seeded from the base seed, the user and the repeat);
- the human consensus always excludes the simulated user;
- update "batch": every member continues on the new answers only (the original loop);
  update "cumulative": from the pre-trained committee, every member is updated with all answers
  so far (each answer counted once, whatever the iteration);
- after every iteration: weighted and macro F1 on the test songs per algorithm (mean of its
  members' probabilities) and for the whole committee, and the class counts asked so far;
  with arousal/valence regression members (algorithms sgd-av, xgb-av) also the song-level RMSE
  and Kendall's tau-b of their mean (arousal, valence) against the listener's own values.
Two reference points per user x repeat on the same test songs: "crowd" (the other listeners'
majority quadrant, the other listeners' overall majority where a song has none) and "own"
(members trained only on the user's pool labels).

Work is split into jobs of one user x one mode (plus one reference job per user); every finished
job is written as one part file, so an interrupted run resumes where it stopped. Jobs run in
this process, in joblib workers or on a Dask cluster.

Modules, by job: `data` (features, annotations, users, splits, pre-training labels), `config`
(ExperimentConfig, PRESETS), `protocol` (the committee under simulation, one user's simulation, F1), `runner`
(jobs, part files, resume, executors, run_experiment), `report` (statistics, summary, plots),
`figures` (paper-ready figures: per config x update, PNG/PDF/SVG with the spread across listeners).
"""
from ..consensus import MODES
from .config import ALGORITHMS, DEFAULT_ALGORITHMS, PRESETS, UPDATES, ExperimentConfig
from .data import (MIN_PRETRAIN_SONGS, FeatureTable, eligible_users, load_annotation_table, load_features,
                   load_song_features, prepare_annotations, pretraining_labels, pretraining_targets,
                   user_split)
from .protocol import (AV_METRICS, COMMITTEE, COUNT_COLUMNS, FULL, RESULT_COLUMNS, Context, audio_members,
                       av_scores, f1_scores, pretrain_for_user, simulatable, simulate_user_mode)
from .figures import write_figures
from .report import per_user_curves, plot_curves, summarize, write_report
from .runner import read_results, run_experiment

__all__ = [
    "ALGORITHMS", "AV_METRICS", "av_scores", "pretraining_targets",
    "COMMITTEE", "COUNT_COLUMNS", "DEFAULT_ALGORITHMS", "FULL", "MIN_PRETRAIN_SONGS", "MODES", "PRESETS",
    "RESULT_COLUMNS", "UPDATES", "Context", "ExperimentConfig", "FeatureTable", "audio_members",
    "eligible_users", "f1_scores", "load_annotation_table", "load_features", "load_song_features",
    "prepare_annotations", "pretrain_for_user", "pretraining_labels", "read_results", "simulatable",
    "run_experiment", "simulate_user_mode", "user_split", "per_user_curves", "plot_curves", "summarize",
    "write_figures", "write_report",
]
