#!/usr/bin/env python3
"""Query strategies against consensus entropy on real listeners (issue 21): paired tests,
Holm-corrected, from a simulator run with several --strategy values.

  python simulate_personalization.py --preset trompa-benchmark -o results/strategies -m mc rand \\
      --update cumulative --strategy consensus-entropy vote-entropy kl-max kl-mean margin \\
      least-confident ranked-batch consensus-entropy+density -j 2
  python experiments/query_strategies.py results/strategies [--algorithm committee]

Per configuration (q4x15, q10x6) and mode ("mc" = consensus entropy, "mc:<strategy>", "rand"):
each user's weighted F1 after the last round (60 answers in both) and the area under their
curve, averaged over the repeats; then, per user, the difference to consensus entropy, with a
two-sided paired t-test and Wilcoxon signed-rank test. The p-values are Holm-corrected over
every comparison in the table (both configurations, both measures, every mode), so "p_holm <
.05" means significant with the number of comparisons accounted for. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trompa_mer.cli import main_wrapper  # noqa: E402
from trompa_mer.errors import MERError  # noqa: E402

BASELINE = "mc"


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN, counted out of the family)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), np.nan)
    known = np.flatnonzero(~np.isnan(p))
    order = known[np.argsort(p[known], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))  # adjusted p-values never decrease
        out[i] = running
    return out


def per_user(table: pd.DataFrame, algorithm: str) -> pd.DataFrame:
    """(config, mode, user) -> final F1 and AUC, each the mean over repeats."""
    from trompa_mer.simulate.report import _auc

    sims = table[~table["mode"].isin(["crowd", "own"]) & (table["algorithm"] == algorithm)]
    if sims.empty:
        raise MERError(f"results: no rows of algorithm {algorithm!r} (algorithms: "
                       f"{', '.join(sorted(table['algorithm'].astype(str).unique()))})")
    rows = []
    for (config, update, mode, user, repeat), curve in sims.groupby(
            ["config", "update", "mode", "user", "repeat"]):
        f1 = curve.sort_values("iteration")["f1_weighted"].to_numpy(dtype=float)
        rows.append({"config": config, "update": update, "mode": mode, "user": user,
                     "final": f1[-1], "auc": _auc(f1), "answers": int(curve["n_annotations"].max())})
    return pd.DataFrame(rows).groupby(["config", "update", "mode", "user"]).mean(numeric_only=True)


def compare(users: pd.DataFrame) -> pd.DataFrame:
    from scipy import stats

    rows = []
    for (config, update), block in users.groupby(level=["config", "update"]):
        block = block.droplevel(["config", "update"])
        if BASELINE not in block.index.get_level_values("mode"):
            raise MERError(f"results: configuration {config} has no mode {BASELINE!r} (consensus entropy) "
                           f"to compare with")
        base = block.loc[BASELINE]
        for mode in block.index.get_level_values("mode").unique():
            values = block.loc[mode]
            for measure in ("final", "auc"):
                common = values.index.intersection(base.index)
                a, b = values.loc[common, measure].to_numpy(), base.loc[common, measure].to_numpy()
                row = {"config": config, "update": update, "mode": mode, "measure": measure,
                       "users": len(common), "mean": float(a.mean()), "diff": float((a - b).mean()),
                       "p_t": np.nan, "p_wilcoxon": np.nan}
                if mode != BASELINE and len(common) > 1 and np.any(a != b):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        row["p_t"] = float(stats.ttest_rel(a, b).pvalue)
                        row["p_wilcoxon"] = float(stats.wilcoxon(a, b).pvalue)
                rows.append(row)
    out = pd.DataFrame(rows)
    out["p_t_holm"] = holm(out["p_t"])
    out["p_wilcoxon_holm"] = holm(out["p_wilcoxon"])
    return out


def markdown(result: pd.DataFrame) -> str:
    lines = ["| config | mode | users | F1 after last round | vs consensus entropy | p (t, Holm) | p (Wilcoxon, Holm) "
             "| AUC | vs consensus entropy | p (t, Holm) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    wide = result.set_index(["config", "update", "mode", "measure"])
    for (config, update, mode), _ in result.groupby(["config", "update", "mode"], sort=False):
        final, auc = wide.loc[(config, update, mode, "final")], wide.loc[(config, update, mode, "auc")]

        def p(value):
            return "" if value != value else f"{value:.3g}"

        lines.append(f"| {config} | {mode} | {int(final['users'])} | {final['mean']:.3f} | {final['diff']:+.3f} "
                     f"| {p(final['p_t_holm'])} | {p(final['p_wilcoxon_holm'])} | {auc['mean']:.3f} "
                     f"| {auc['diff']:+.3f} | {p(auc['p_t_holm'])} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a simulator output folder (results.csv)")
    p.add_argument("--algorithm", default="committee", help="whose F1 (default: the whole committee)")
    args = p.parse_args()
    path = Path(args.run) / "results.csv"
    if path.is_file():
        table = pd.read_csv(path, dtype={"user": str, "update": str, "config": str}, keep_default_na=False,
                            na_values=[""])
    else:  # a run still going (or stopped): the users whose every mode has finished
        from trompa_mer.simulate import read_results

        table = read_results(args.run)
        if table.empty:
            raise MERError(f"{args.run}: no results.csv and no finished parts (expected a simulator output folder)")
        modes = table.groupby("user")["mode"].nunique()
        complete = modes[modes == modes.max()].index
        table = table[table["user"].isin(complete)]
        print(f"note: {path} is missing (the run is not finished); using the {len(complete)} users whose "
              f"every mode has finished", file=sys.stderr)
    result = compare(per_user(table, args.algorithm))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    main_wrapper(main)
