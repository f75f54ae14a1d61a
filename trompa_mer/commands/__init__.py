"""The command-line steps: one module per step (parse_args + main, thin: arguments, a clear
message, one call into the package), run as the root scripts (`python create_user.py ...`) or
as the installed command (`trompa-mer create-user ...`, `main` below). Standard library only
here: the packages are checked before a step is imported."""
import importlib
import sys

# command: (module, what it does), in the order of the pipeline
STEPS = {
    "extract-features": ("extract_features", "audio -> window feature CSVs (the pool)"),
    "deam-classifier": ("deam_classifier", "pre-train a committee on a corpus"),
    "pretrain-encoder": ("pretrain_encoder", "pre-train a spectrogram encoder without labels"),
    "create-user": ("create_user", "create a listener with a copy of the committee"),
    "get-hard-tracks": ("get_hard_tracks", "the songs the listener should label next"),
    "retrain-model": ("retrain_model", "retrain the listener's committee on their answers"),
    "predict-emotion": ("predict_emotion", "quadrant probabilities for features or audio"),
    "get-recommendations": ("get_recommendations", "one song per quadrant from a playlist group"),
    "manage-users": ("manage_users", "list, show, export, undo, delete listeners"),
    "simulate-personalization": ("simulate_personalization", "offline experiments on annotated data"),
}
# the steps that also need the feature extractor's packages
EXTRACTING = {"extract-features": ("opensmile", "soundfile")}


def usage() -> str:
    width = max(map(len, STEPS))
    lines = [f"  {name:<{width}}  {what}" for name, (_module, what) in STEPS.items()]
    return ("usage: trompa-mer COMMAND [ARGS...]   (trompa-mer COMMAND --help for its flags)\n\n"
            "Personalized music emotion recognition: the pipeline's steps, the same programs as the\n"
            "scripts (create-user is `python create_user.py`). Paths: MER_MODELS_DIR, MER_DATA_DIR\n"
            "(default ./models and ./data of the project checkout, or of the current folder for an\n"
            "installed package; MER_ROOT sets that folder).\n\ncommands:\n" + "\n".join(lines))


def main(argv=None) -> None:
    """`trompa-mer COMMAND ARGS...`: run the step as its script would (exit status, one-line
    errors); `--help` lists the steps."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":
        from trompa_mer import __version__

        print(f"trompa-mer {__version__}")
        sys.exit(0)
    name = argv[0].removesuffix(".py").replace("_", "-")
    if name not in STEPS:
        print(f"error: trompa-mer: unknown command {argv[0]!r} (commands: {', '.join(STEPS)})", file=sys.stderr)
        sys.exit(2)
    from trompa_mer.environment import require_packages

    require_packages(EXTRACTING.get(name, ()), script=f"trompa-mer {name}")
    module = importlib.import_module(f"trompa_mer.commands.{STEPS[name][0]}")
    from trompa_mer.cli import main_wrapper

    # each step parses sys.argv; argparse names the program after argv[0]
    sys.argv = [f"trompa-mer {name}", *argv[1:]]
    main_wrapper(module.main)
