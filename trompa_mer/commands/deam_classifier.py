"""Pre-train and cross-validate committee members on a corpus; save the committee.

  python deam_classifier.py -cv 5 -m xgb                      # Emotify, report only
  python deam_classifier.py --dataset 4q -m xgb,musicnn --window-stride 2 -o models/pretrained  # the default committee
  python deam_classifier.py --dataset 4q -m sgd,xgb --window-stride 2 -o models/pretrained-features  # features only
  python deam_classifier.py --dataset 4q --protocol paper -cv 10 -m sgd,xgb   # comparable with Panda et al. 2018
  python deam_classifier.py -m all -o DIR                                     # the Emotify committee
  python deam_classifier.py --dataset deam --deam-features DIR -m gnb,sgd,rf
  python deam_classifier.py --task regression -cv 5                  # arousal/valence, Emotify
  python deam_classifier.py --task regression -m all,all-av          # regressors beside classifiers
"""
import argparse
import shlex
import sys

from trompa_mer.commands import settings
from trompa_mer.cli import main_wrapper, positive_int


def parse_args(argv=None):
    shared = settings.SHARED_DATA_DIR
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-cv", type=positive_int, default=settings.CV_SPLITS,
                   help="splits (shuffle) or folds per repeat (kfold, paper) = members per algorithm in the "
                        "saved committee (default %(default)s)")
    p.add_argument("-m", default=None,
                   help="algorithms, comma-separated: quadrant classifiers on windows gnb, sgd, xgb ('all' = "
                        "the three) and on songs' window statistics song-sgd, song-gnb, song-xgb ('all-song'), "
                        "arousal/valence regressors sgd-av, xgb-av ('all-av' = the two), musicnn (a classifier on the "
                        "musicnn tagger's song embeddings; reads the clips' audio: 4q, emotify) (committee members), "
                        "and knn, rf, svc, gbc, gpc (comparison reports only) "
                        "(default: all; with --task regression: all-av)")
    p.add_argument("--task", choices=("classification", "regression"), default="classification",
                   help="classification: quadrant scores only; regression: the corpus must have "
                        "arousal/valence targets, and the report adds RMSE, R², Pearson r, Kendall's τ "
                        "and CCC per axis for the regression members (default %(default)s)")
    p.add_argument("--targets", choices=("static", "dynamic"), default="static",
                   help="regression targets: static (every window carries its song's mean arousal/valence) "
                        "or dynamic (each window the annotation at its own time; DEAM, PMEmo, 1000 Songs); "
                        "dynamic also reports the metrics per song over its time series (default %(default)s)")
    p.add_argument("--dataset", choices=("emotify", "4q", "deam", "generic", "pmemo", "emomusic"), default="emotify",
                   help="training corpus (default %(default)s); 4q: commercial clips with perceived-emotion "
                        "quadrants, split by artist (docs/pretraining.md)")
    p.add_argument("--protocol", choices=("shuffle", "kfold", "paper"), default=None,
                   help="splits: shuffle = -cv random splits holding out --test-size of the songs "
                        "(GroupShuffleSplit); kfold = -cv stratified folds grouped by artist where the corpus "
                        "has artists (4q), else by song, repeated --repeats times; paper = -cv stratified folds "
                        "over songs, not grouped (comparable with published 4Q figures, not with ours) "
                        "(default: kfold for 4q, shuffle otherwise)")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="with --protocol kfold or paper: repeat the folds with seeds seed, seed+1, ...; every "
                        "split is scored, the committee keeps the first repeat's members "
                        "(default: 3 for 4q with kfold, else 1)")
    p.add_argument("-o", "--output", default=None,
                   help="committee folder to write (replaced atomically); omitted: report only")
    p.add_argument("--fourq", default=str(shared / "4q"),
                   help="4Q folder with audio/, annotations.csv (Song, Quadrant) and metadata.csv (Song, Artist) "
                        "(default %(default)s)")
    p.add_argument("--emotify", default=str(shared / "emotify"),
                   help="Emotify folder with audio/ and annotations.csv (default %(default)s)")
    p.add_argument("--label-scheme", choices=("av-median", "av-zero", "argmax"), default="av-median",
                   help="how Emotify's GEMS ticks become quadrants (default %(default)s; see docs/pretraining.md)")
    p.add_argument("--deam-features", default=str(settings.DATA_DIR / "deam" / "features"),
                   help="folder of DEAM per-song feature CSVs (default %(default)s)")
    p.add_argument("--deam-arousal", default=str(shared / "deam" / "arousal.csv"),
                   help="DEAM dynamic arousal annotations (default %(default)s)")
    p.add_argument("--deam-valence", default=str(shared / "deam" / "valence.csv"),
                   help="DEAM dynamic valence annotations (default %(default)s)")
    p.add_argument("--features", help="generic dataset: features CSV/parquet with a song id column")
    p.add_argument("--labels", help="generic dataset: labels CSV with song id and quadrant or arousal/valence")
    p.add_argument("--id-column", help="generic dataset: name of the song id column (default: detected)")
    p.add_argument("--scale", choices=("0..1", "1..9", "-1..1"),
                   help="generic dataset: the scale of its arousal/valence labels; given, they become "
                        "regression targets mapped onto -1..1 (docs/regression.md)")
    p.add_argument("--pmemo", help="pmemo dataset: the PMEmo 2019 folder (annotations/, features/)")
    p.add_argument("--emomusic-features", help="emomusic dataset: folder of per-song feature CSVs")
    p.add_argument("--emomusic-annotations",
                   help="emomusic dataset: folder with static_annotations.csv and "
                        "arousal_cont_average.csv / valence_cont_average.csv")
    p.add_argument("--seed", type=int, default=settings.SEED, help="split seed (default %(default)s)")
    p.add_argument("--test-size", type=float, default=settings.TEST_SIZE,
                   help="--protocol shuffle: share of songs held out per split (default %(default)s)")
    p.add_argument("--balance", choices=("weights", "none"), default="weights",
                   help="class imbalance: balanced sample weights or none (default %(default)s)")
    p.add_argument("--window-stride", type=positive_int, default=1,
                   help="train on every N-th window of each song (windows overlap by half; "
                        "2 halves training time) (default %(default)s)")
    p.add_argument("--gnb-variance", choices=("tied", "per-class"), default="tied",
                   help="GaussianNB: one variance per feature pooled over quadrants, or sklearn's "
                        "per-quadrant variances (default %(default)s)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="keep every member's temperature at 1 (no tempering of over-confident members)")
    p.add_argument("--jobs", type=positive_int, default=settings.JOBS,
                   help="parallel feature extraction processes (default %(default)s)")
    p.add_argument("--cache-dir", default=str(settings.CACHE_DIR),
                   help="where extracted Emotify features are cached (default %(default)s)")
    p.add_argument("--encoder", metavar="DIR",
                   help="also train one encoder member per split (Emotify only) on this pre-trained "
                        "encoder (pretrain_encoder.py --out DIR); added to the committee as encoder_<k>, "
                        "scored in the same table (row 'encoder'); the clips' patches and the members "
                        "are long work: a 'note: about N min ...' line first, from the measured rate "
                        "(MER_COST_NOTE_SECONDS sets when, default 60); in the loop the members read "
                        "MER_AUDIO_DIR")
    p.add_argument("--transfer", choices=("feature-extractor", "full"), default="feature-extractor",
                   help="with --encoder: keep the encoder frozen and train the dense layers and heads "
                        "(feature-extractor), or then fine-tune everything (full) (default %(default)s)")
    p.add_argument("--encoder-epochs", type=positive_int, default=30,
                   help="with --encoder: epochs of the dense layers and heads (default %(default)s)")
    p.add_argument("--full-epochs", type=positive_int, default=5,
                   help="with --transfer full: fine-tuning epochs (default %(default)s)")
    p.add_argument("--patches-per-song", type=positive_int, default=4,
                   help="with --transfer full: random 1 s patches per clip per fine-tuning epoch (default %(default)s)")
    p.add_argument("--report", help="also write the full cross-validation report as JSON here")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.m is None:
        args.m = "all-av" if args.task == "regression" else "all"
    if args.protocol is None:
        args.protocol = "kfold" if args.dataset == "4q" else "shuffle"
    if args.repeats is None:
        args.repeats = 3 if args.dataset == "4q" and args.protocol == "kfold" else 1
    elif args.protocol == "shuffle" and args.repeats != 1:
        p.error("--repeats: only with --protocol kfold or paper (shuffle draws -cv random splits)")
    if not 0 < args.test_size < 1:
        p.error(f"--test-size: expected a number between 0 and 1, got {args.test_size}")
    return args


def recorded_command(argv) -> str:
    """The command for the manifest, without the flags that do not change the committee."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--quiet", "--jobs", "--report"):
            skip = arg != "--quiet"
        elif not arg.startswith(("--jobs=", "--report=")):
            kept.append(arg)
    return "python deam_classifier.py " + shlex.join(kept)


def member_parameters(args) -> dict:
    """Each member algorithm's hyperparameters, from settings (and --gnb-variance)."""
    return {
        "xgb": {"params": settings.XGB_PARAMS, "rounds": settings.XGB_ROUNDS,
                "update_rounds": settings.XGB_UPDATE_ROUNDS},
        "sgd": {"params": settings.SGD_PARAMS, "seed": settings.SEED},
        "gnb": {"variance": args.gnb_variance},
        "xgb-av": {"params": settings.XGB_AV_PARAMS, "rounds": settings.XGB_ROUNDS,
                   "update_rounds": settings.XGB_UPDATE_ROUNDS},
        "sgd-av": {"params": settings.SGD_AV_PARAMS, "seed": settings.SEED},
        "song-sgd": {"params": settings.SONG_SGD_PARAMS, "seed": settings.SEED},
        "song-gnb": {"variance": args.gnb_variance},
        "song-xgb": {"params": settings.SONG_XGB_PARAMS, "rounds": settings.SONG_XGB_ROUNDS,
                     "update_rounds": settings.XGB_UPDATE_ROUNDS},
        "musicnn": {"params": settings.SONG_SGD_PARAMS, "seed": settings.SEED},
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    from trompa_mer import pretrain

    member_params = member_parameters(args)
    paths = {"emotify": args.emotify, "fourq": args.fourq, "cache_dir": args.cache_dir, "deam_features": args.deam_features,
             "deam_arousal": args.deam_arousal, "deam_valence": args.deam_valence,
             "features": args.features, "labels": args.labels, "id_column": args.id_column,
             "scale": args.scale, "pmemo": args.pmemo, "emomusic_features": args.emomusic_features,
             "emomusic_annotations": args.emomusic_annotations}
    encoder_members = None
    if args.encoder:
        from trompa_mer import cost

        cost.configure(settings.COST_NOTE_S)
        encoder_members = {"encoder_dir": args.encoder, "transfer": args.transfer,
                           "audio_cache_dir": str(settings.AUDIO_CACHE_DIR / "emotify"),
                           "member_params": {"epochs": args.encoder_epochs, "full_epochs": args.full_epochs,
                                             "patches_per_song": args.patches_per_song, "seed": args.seed}}
    pretrain.run(args.dataset, paths, args.m, args.cv, out_dir=args.output, seed=args.seed,
                 test_size=args.test_size, balance=args.balance, calibrate=not args.no_calibrate,
                 label_scheme=args.label_scheme, jobs=args.jobs, progress=not args.quiet,
                 member_params=member_params, report_path=args.report, window_stride=args.window_stride,
                 task=args.task, targets=args.targets, protocol=args.protocol, repeats=args.repeats,
                 command=recorded_command(argv), encoder_members=encoder_members)


if __name__ == "__main__":
    main_wrapper(main)
