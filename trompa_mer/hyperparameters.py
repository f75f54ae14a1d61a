"""Default member hyperparameters: one source for the package and for settings.py.

Kept free of heavy imports so settings.py (read by every script) can use it cheaply.
"""
SEED = 1987
SGD_PARAMS = {"loss": "log_loss", "penalty": "l2", "alpha": 1e-3, "max_iter": 50, "tol": None}
XGB_PARAMS = {
    "objective": "multi:softprob",
    "num_class": 4,
    "max_depth": 5,
    "eta": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.5,
    "tree_method": "hist",
    "nthread": 1,
    "seed": SEED,
}
XGB_ROUNDS = 100
XGB_UPDATE_ROUNDS = 10
# Arousal/valence regression members (trompa_mer.regression)
SGD_AV_CLIP = 3.0  # standardized features clipped to +-3 before the linear regressors
SGD_AV_PARAMS = {"loss": "squared_error", "penalty": "l2", "alpha": 1e-2, "max_iter": 20, "tol": None,
                 "learning_rate": "invscaling", "eta0": 0.01}
# the classifier's tree settings, with a squared-error objective for the two outputs
XGB_AV_PARAMS = {**{k: v for k, v in XGB_PARAMS.items() if k not in ("objective", "num_class")},
                 "objective": "reg:squarederror"}
# Song members (one row per song: window statistics; members.SongStatistics; not in the shipped
# committee). Set by hand (song-sgd's alpha between 1e-2 and 1e-1, song-xgb's rounds between 100
# and 300) and measured on the 4Q corpus by artist-grouped cross-validation; not tuned by nested
# CV (docs/pretraining.md, "The default committee: 4Q").
SONG_SGD_PARAMS = {"loss": "log_loss", "penalty": "l2", "alpha": 1e-1, "max_iter": 200, "tol": None}
SONG_XGB_PARAMS = {**XGB_PARAMS, "max_depth": 3, "eta": 0.1, "colsample_bytree": 0.3, "min_child_weight": 2}
SONG_XGB_ROUNDS = 100

# Songs a ranking scores when the committee must score them (get_hard_tracks.py --candidates).
# Chosen by measurement (benchmarks/bench_scale.py, docs/scale.md): the shipped 5 SGD + 5
# XGBoost committee costs ~1.4 ms of CPU per candidate on top of ~1.3 s of start-up, committee
# load and pool opening at 10,000 songs, so 500 is the largest multiple of 250 that keeps a
# ranking after a retrain within 2 s of CPU there (and ~2.7 s at 100,000 songs). A pool with at
# most this many unlabelled songs is ranked whole, exactly as before.
CANDIDATES = 500
