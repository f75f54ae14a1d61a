"""Offline personalization experiments: simulate each listener answering the committee's queries
with their own recorded labels, and report per-user learning curves, F1, paired tests and plots.

Example (the TROMPA-MER benchmark, reads ../shared/data):
    python simulate_personalization.py --preset trompa-benchmark -o results/trompa
Only the report (tables, plots/, figures/) of a finished run, from its results.csv:
    python simulate_personalization.py --report-only results/trompa
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from trompa_mer.commands import settings
from trompa_mer.cli import main_wrapper, positive_int


def build_parser() -> argparse.ArgumentParser:
    from trompa_mer.consensus import MODES
    from trompa_mer.crowd import CROWD_VARIANTS
    from trompa_mer.simulate import PRESETS, UPDATES
    from trompa_mer.strategies import STRATEGIES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="a named experiment; its paths are relative to the shared data folder "
                        "(MER_SHARED_DATA); flags given explicitly override it")
    p.add_argument("-a", "--annotations",
                   help="annotations: TROMPA-MER export (.json), CSV (user, song, quadrant or "
                        "arousal/valence) or AMG1608 .mat (song ids from --amg-ids)")
    p.add_argument("--amg-ids", help="AMG1608 only: file with one song id per line, in the .mat's song order")
    p.add_argument("-i", "--features",
                   help="features: a folder of window-level feature CSVs (pool store) or a song-level "
                        "table (CSV/parquet, id column s_id/song + numeric columns)")
    p.add_argument("-o", "--output",
                   help="output folder (parts/, results.csv, summary.csv/md, tests.csv, plots/, figures/); "
                        "rerunning with the same settings resumes where it stopped")
    p.add_argument("-n", "--min-annotations", type=positive_int,
                   help="simulate users with at least this many annotated songs that have features (default 80)")
    p.add_argument("--max-annotations", type=positive_int,
                   help="only users with at most this many annotated songs that have features "
                        "(a development set kept apart from the benchmark; default no limit)")
    p.add_argument("-m", "--modes", nargs="+", choices=MODES, help="query modes (default: all four)")
    p.add_argument("--strategy", nargs="+", dest="strategies", metavar="NAME",
                   help="how mode mc ranks the songs; several run side by side, each non-default "
                        "one as mode 'mc:NAME' in the results (default consensus-entropy, mode "
                        "'mc' as always). NAME: " + ", ".join(STRATEGIES) + "; a score strategy "
                        "+ '+density' or '+density-cosine' is weighted by how typical the song is "
                        "(docs/loop.md, \"Query strategies\"). max-std needs --algorithms sgd-av "
                        "or xgb-av")
    p.add_argument("--balanced", action="store_true",
                   help="take the top q/4 queries per predicted quadrant")
    p.add_argument("-q", "--queries", nargs="+", type=positive_int,
                   help="queries per iteration; several values run several configurations, paired with -e")
    p.add_argument("-e", "--iterations", nargs="+", type=positive_int,
                   help="iterations per configuration (as many values as -q)")
    p.add_argument("--update", nargs="+", choices=UPDATES, dest="updates",
                   help="batch: update on the new answers only; cumulative: from the pre-trained "
                        "committee on all answers so far (both may be given)")
    p.add_argument("--repeats", type=positive_int, help="different 85/15 splits per user (default 3)")
    p.add_argument("--test-size", type=float, help="fraction of each user's songs held out for testing (default 0.15)")
    p.add_argument("--seed", type=int, default=None, help=f"base random seed (default {settings.SEED})")
    p.add_argument("--pretrain", choices=["leave-user-out"],
                   help="pre-train a committee per user on the songs they did not annotate, labeled by "
                        "the other listeners' majority quadrant (default when no --committee)")
    p.add_argument("--committee", help="a pre-trained committee folder (same feature space) instead of --pretrain")
    p.add_argument("--audio-dir",
                   help="with --committee: the songs' audio (one file per song, named <song id>.<ext>), "
                        "read by the committee's audio members (cnn, encoder); decoded 16 kHz copies "
                        "are cached under MER_AUDIO_CACHE_DIR. A committee with audio members is "
                        "refused without it")
    p.add_argument("--algorithms", nargs="+", choices=["gnb", "sgd", "xgb", "sgd-av", "xgb-av"],
                   help="member algorithms for --pretrain (default gnb sgd xgb); sgd-av and xgb-av "
                        "are arousal/valence regression members, pre-trained on the other listeners' "
                        "mean arousal/valence, and add the result columns rmse_arousal, "
                        "rmse_valence, tau_arousal, tau_valence")
    p.add_argument("--crowd-member", action="store_true",
                   help="add the crowd-aware members (other listeners' quadrant frequencies + audio, "
                        "pre-trained leave-one-out per user) as algorithm 'crowd'; 'full' = all members")
    p.add_argument("--crowd-variant", choices=sorted(CROWD_VARIANTS), default="plain",
                   help="crowd member options: plain = raw frequencies, one prior strength; smoothed = "
                        "empirical-Bayes smoothed frequencies, frequency x log(listeners) terms and a "
                        "separate prior strength for the crowd block; similar = once the listener has "
                        "answered, each other listener's vote weighted by how often they agreed with "
                        "the listener's answers; similar-pretrained = similar, pre-trained on examples "
                        "weighted the same way (default plain; measured in docs/experiments.md)")
    p.add_argument("--candidates", type=positive_int,
                   help="mc, mix and --balanced: rank a random sample of this many of the songs not asked "
                        "yet each round, as get_hard_tracks.py --candidates (default: all of them)")
    p.add_argument("--users", nargs="+", help="simulate only these users")
    p.add_argument("-j", "--jobs", type=positive_int, default=settings.JOBS,
                   help="users x modes in parallel (joblib processes; default MER_JOBS or 1)")
    p.add_argument("--backend", choices=["joblib", "dask"], default="joblib",
                   help="where jobs run: joblib (local) or a Dask cluster (--scheduler)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--no-plots", action="store_true",
                   help="skip the PNG learning curves (plots/) and the paper figures (figures/)")
    p.add_argument("--report-only", metavar="DIR",
                   help="simulate nothing: rewrite the report (summary.csv/md, tests.csv, plots/, figures/) "
                        "of a finished run from DIR/results.csv")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _report_only(folder, plots: bool) -> int:
    """The report of a finished run, from its results.csv alone (no data, no simulation)."""
    import pandas as pd

    from trompa_mer.errors import MERError
    from trompa_mer.simulate import write_report

    results = Path(folder) / "results.csv"
    if not results.is_file():
        raise MERError(f"--report-only {folder}: no results.csv there (a finished run's -o folder holds one)")
    table = pd.read_csv(results, dtype={"user": str, "update": str, "config": str}, keep_default_na=False,
                        na_values=[""])
    for column in ("update", "config"):
        table[column] = table[column].fillna("")
    print(json.dumps(write_report(table, folder, plots=plots), indent=2))
    return 0


def main(argv=None) -> int:
    from trompa_mer.errors import MERError
    from trompa_mer.strategies import DEFAULT_STRATEGY
    from trompa_mer.simulate import (PRESETS, ExperimentConfig, simulatable, load_annotation_table,
                                     load_features, run_experiment)

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.report_only:
        return _report_only(args.report_only, plots=not args.no_plots)
    if not args.output:
        parser.error("the following arguments are required: -o/--output")
    preset = dict(PRESETS.get(args.preset, {}))
    for key in ("annotations", "features"):
        if key in preset:
            preset[key] = str(settings.SHARED_DATA_DIR / preset[key])
    annotations_path = args.annotations or preset.get("annotations")
    features_path = args.features or preset.get("features")
    if not annotations_path or not features_path:
        raise MERError("give -a ANNOTATIONS and -i FEATURES (or a --preset)")

    def pick(name, default):
        value = getattr(args, name)
        return value if value is not None else preset.get(name, default)

    config = ExperimentConfig(
        min_annotations=pick("min_annotations", 80), modes=list(pick("modes", ["mc", "hc", "mix", "rand"])),
        balanced=args.balanced, queries=list(pick("queries", [4])), iterations=list(pick("iterations", [15])),
        updates=list(pick("updates", ["batch"])), repeats=pick("repeats", 3),
        seed=args.seed if args.seed is not None else settings.SEED, test_size=pick("test_size", 0.15),
        algorithms=list(pick("algorithms", ["gnb", "sgd", "xgb"])), n_splits=settings.CV_SPLITS,
        pretrain_test_size=settings.TEST_SIZE, users=args.users, crowd_member=args.crowd_member,
        crowd_variant=args.crowd_variant, max_annotations=pick("max_annotations", None),
        strategies=list(pick("strategies", [DEFAULT_STRATEGY])),
        candidates=args.candidates,
        member_params={
            "sgd": {"params": dict(settings.SGD_PARAMS), "seed": settings.SEED},
            "xgb": {"params": dict(settings.XGB_PARAMS), "rounds": settings.XGB_ROUNDS,
                    "update_rounds": settings.XGB_UPDATE_ROUNDS},
        })
    if args.committee and args.pretrain:
        raise MERError("give either --committee or --pretrain, not both")
    if args.audio_dir and not args.committee:
        raise MERError("--audio-dir: only for a --committee with audio members (the simulator "
                       "does not pre-train audio members)")
    if args.backend == "dask" and not args.scheduler:
        raise MERError("--backend dask needs --scheduler ADDRESS")

    if annotations_path.lower().endswith(".mat"):
        from trompa_mer.datasets.amg1608 import load_amg1608

        annotations = load_amg1608(annotations_path, args.amg_ids)
    else:
        annotations = load_annotation_table(annotations_path)
    features = load_features(features_path)
    committee = None
    if args.committee:
        from trompa_mer.committee import Committee  # the committee helper's loader

        committee = Committee.load(args.committee)
        config.pretrain = None
    audio = None
    if committee is not None and committee.of_kind("audio") and args.audio_dir:
        from trompa_mer.audio_cache import pool_audio_source

        readers = [committee.members[i][0] for i in committee.of_kind("audio")]
        audio = pool_audio_source(args.audio_dir, settings.AUDIO_CACHE_DIR, [], readers)
    if committee is not None:
        simulatable(committee, audio)
    result = run_experiment(annotations, features, config, args.output, committee=committee,
                            jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
                            progress=not args.quiet, plots=not args.no_plots, audio=audio)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    main_wrapper(main)
