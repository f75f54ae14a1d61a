"""The report of an experiment: per-user learning curves, summary statistics, paired tests
(t-test and Wilcoxon, Bonferroni-corrected), the markdown summary, the plots (plots/: one PNG
per algorithm) and the paper-ready figures (figures/, written by figures.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import atomic
from .protocol import AV_METRICS, COMMITTEE, FULL


# --- summary, statistics, plots ------------------------------------------------------------
def _auc(curve: np.ndarray) -> float:
    """Area under a learning curve over iterations scaled to [0, 1] (so it reads as a mean F1)."""
    if len(curve) < 2:
        return float(curve[0]) if len(curve) else float("nan")
    return float(np.trapezoid(curve, dx=1.0 / (len(curve) - 1)))


def per_user_curves(table: pd.DataFrame, metric: str = "f1_weighted") -> pd.DataFrame:
    """Mean over repeats of each user's curve: rows (config, update, algorithm, mode, user) x iteration."""
    sims = table[~table["mode"].isin(["crowd", "own"])]
    return (sims.groupby(["config", "update", "algorithm", "mode", "user", "iteration"])[metric].mean()
            .unstack("iteration"))


def _sd(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """One-sided paired t-test and Wilcoxon signed-rank (a > b): (t, p_t, w, p_w)."""
    from scipy import stats

    if len(a) < 2:
        return (float("nan"),) * 4
    with np.errstate(all="ignore"):  # identical samples give NaN, which is the honest answer
        t = stats.ttest_rel(a, b, alternative="greater")
    import warnings

    try:
        with warnings.catch_warnings():  # all-zero differences: NaN is the honest answer
            warnings.simplefilter("ignore", RuntimeWarning)
            w = stats.wilcoxon(a, b, alternative="greater")
        w_stat, w_p = float(w.statistic), float(w.pvalue)
    except ValueError:  # every difference zero
        w_stat, w_p = float("nan"), float("nan")
    return float(t.statistic), float(t.pvalue), w_stat, w_p


def summarize(table: pd.DataFrame, metric: str = "f1_weighted") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per config x update x mode x algorithm, paired tests)."""
    curves = per_user_curves(table, metric)
    macro = per_user_curves(table, "f1_macro")
    refs = table[table["mode"].isin(["crowd", "own"])].groupby(["mode", "algorithm", "user"])[metric].mean()
    crowd = refs.loc["crowd", "crowd"] if ("crowd", "crowd") in refs.index.droplevel("user") else None
    rows, tests = [], []
    for (config, update, algorithm), block in curves.groupby(level=["config", "update", "algorithm"]):
        finals, aucs = {}, {}
        for mode, user_curves in block.groupby(level="mode"):
            values = user_curves.to_numpy(dtype=float)
            last = np.array([c[~np.isnan(c)][-1] for c in values])
            start = values[:, 0]
            auc = np.array([_auc(c[~np.isnan(c)]) for c in values])
            slopes = np.array([np.polyfit(np.arange((~np.isnan(c)).sum()), c[~np.isnan(c)], 1)[0]
                               if (~np.isnan(c)).sum() > 1 else 0.0 for c in values])
            m_values = macro.loc[(config, update, algorithm, mode)].to_numpy(dtype=float)
            m_last = np.array([c[~np.isnan(c)][-1] for c in m_values])
            users = user_curves.index.get_level_values("user")
            finals[mode] = pd.Series(last, index=users)
            aucs[mode] = pd.Series(auc, index=users)
            _, p_gain, _, p_gain_w = _paired(last, start)
            row = {"config": config, "update": update, "mode": mode, "algorithm": algorithm,
                   "n_users": len(users), "f1_start_mean": start.mean(), "f1_start_sd": _sd(start),
                   "f1_end_mean": last.mean(), "f1_end_sd": _sd(last),
                   "f1_macro_start_mean": m_values[:, 0].mean(), "f1_macro_end_mean": m_last.mean(),
                   "auc_mean": auc.mean(), "auc_sd": _sd(auc),
                   # a least-squares fit to a flat curve gives about +-1e-17, not 0: a rise
                   # is more than rounding (one test song moves F1 by far more than 1e-12)
                   "n_positive_slope": int((slopes > 1e-12).sum()),
                   "p_end_gt_start_t": p_gain, "p_end_gt_start_wilcoxon": p_gain_w}
            if crowd is not None:
                c = crowd.reindex(users).to_numpy(dtype=float)
                row["crowd_mean"] = float(np.nanmean(c))
                row["n_users_above_crowd"] = int((last > c).sum())
                _, row["p_end_gt_crowd_t"], _, row["p_end_gt_crowd_wilcoxon"] = _paired(last, c)
            own = refs.get(("own", algorithm))
            if own is not None:
                row["own_mean"] = float(own.reindex(users).mean())
            rows.append(row)
        modes = list(finals)
        pairs = [(a, b) for a in modes for b in modes if a != b]
        for measure, values in (("f1_end", finals), ("auc", aucs)):
            for a, b in pairs:
                common = values[a].index.intersection(values[b].index)
                t, p_t, w, p_w = _paired(values[a][common].to_numpy(), values[b][common].to_numpy())
                tests.append({"config": config, "update": update, "algorithm": algorithm, "measure": measure,
                              "a": a, "b": b, "mean_diff": float((values[a][common] - values[b][common]).mean()),
                              "t": t, "p_t": p_t, "p_t_bonferroni": min(1.0, p_t * len(pairs)) if p_t == p_t else p_t,
                              "wilcoxon": w, "p_wilcoxon": p_w,
                              "p_wilcoxon_bonferroni": min(1.0, p_w * len(pairs)) if p_w == p_w else p_w})
    # algorithms against each other where crowd-aware members ran (final F1, per mode)
    finals_all = curves.apply(lambda c: c.dropna().iloc[-1], axis=1)
    pairs = [("crowd", COMMITTEE), (FULL, COMMITTEE), (FULL, "crowd"), ("crowd", FULL)]
    for (config, update, mode), block in finals_all.groupby(level=["config", "update", "mode"]):
        wide = block.unstack("algorithm")
        for a, b in pairs:
            if a in wide and b in wide:
                both = wide[[a, b]].dropna()
                t, p_t, w, p_w = _paired(both[a].to_numpy(), both[b].to_numpy())
                tests.append({"config": config, "update": update, "algorithm": f"{a}>{b}",
                              "measure": f"f1_end[{mode}]", "a": a, "b": b,
                              "mean_diff": float((both[a] - both[b]).mean()), "t": t, "p_t": p_t,
                              "p_t_bonferroni": p_t, "wilcoxon": w, "p_wilcoxon": p_w,
                              "p_wilcoxon_bonferroni": p_w})
    # update strategies against each other, per config x mode x algorithm (final F1)
    if curves.index.get_level_values("update").nunique() == 2:
        finals = curves.apply(lambda c: c.dropna().iloc[-1], axis=1)
        for (config, algorithm, mode), block in finals.groupby(level=["config", "algorithm", "mode"]):
            wide = block.unstack("update").dropna()
            for a, b in (("cumulative", "batch"), ("batch", "cumulative")):
                t, p_t, w, p_w = _paired(wide[a].to_numpy(), wide[b].to_numpy())
                tests.append({"config": config, "update": f"{a}>{b}", "algorithm": algorithm,
                              "measure": f"f1_end[{mode}]", "a": a, "b": b,
                              "mean_diff": float((wide[a] - wide[b]).mean()), "t": t, "p_t": p_t,
                              "p_t_bonferroni": min(1.0, p_t * 2) if p_t == p_t else p_t, "wilcoxon": w,
                              "p_wilcoxon": p_w, "p_wilcoxon_bonferroni": min(1.0, p_w * 2) if p_w == p_w else p_w})
    return _with_av_summary(pd.DataFrame(rows), table), pd.DataFrame(tests)


def _last_known(curve: np.ndarray) -> float:
    known = curve[~np.isnan(curve)]
    return float(known[-1]) if len(known) else float("nan")


def _with_av_summary(summary: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The arousal/valence metrics of the regression members (protocol.AV_METRICS), summarised
    as F1 is: per config x update x algorithm x mode, the mean over users of the start and end
    value (each user's mean over repeats), the sd at the end, and the one-sided paired t-test
    that the end is better than the start (RMSE lower, tau higher). Rows of algorithms without
    the metrics (classifiers) keep NaN. Without the metrics' columns the summary is as before."""
    present = [m for m in AV_METRICS if m in table.columns]
    if not present or summary.empty:
        return summary
    summary = summary.copy()
    key = ["config", "update", "algorithm", "mode"]
    for metric in present:
        values = {}
        for group, block in per_user_curves(table, metric).groupby(level=key):
            curves = block.to_numpy(dtype=float)
            start = curves[:, 0]
            end = np.array([_last_known(c) for c in curves])
            both = ~np.isnan(start) & ~np.isnan(end)
            if not both.any():
                continue
            better, worse = (start, end) if metric.startswith("rmse") else (end, start)
            _, p_t, _, _ = _paired(better[both], worse[both])
            values[group] = {f"{metric}_start_mean": float(np.mean(start[both])),
                             f"{metric}_end_mean": float(np.mean(end[both])),
                             f"{metric}_end_sd": _sd(end[both]), f"p_{metric}_improved_t": p_t}
        columns = [f"{metric}_start_mean", f"{metric}_end_mean", f"{metric}_end_sd", f"p_{metric}_improved_t"]
        for column in columns:
            summary[column] = [values.get(tuple(r), {}).get(column, float("nan"))
                               for r in summary[key].itertuples(index=False)]
    return summary


def _markdown(summary: pd.DataFrame, tests: pd.DataFrame, refs: pd.DataFrame) -> str:
    lines = ["# Simulation summary (weighted F1 on each user's test songs; per user the mean over repeats)", ""]
    lines.append("## Reference points (mean ± sd over users)")
    lines.append("")
    lines.append("| reference | algorithm | weighted F1 | macro F1 |")
    lines.append("|---|---|---|---|")
    for (mode, algorithm), block in refs.groupby(["mode", "algorithm"]):
        per_user = block.groupby("user")[["f1_weighted", "f1_macro"]].mean()
        lines.append(f"| {mode} | {algorithm} | {per_user.f1_weighted.mean():.3f} ± {per_user.f1_weighted.std():.3f}"
                     f" | {per_user.f1_macro.mean():.3f} |")
    lines.append("")
    lines.append("## Learning curves")
    lines.append("")
    lines.append("| config | update | mode | algorithm | F1 start | F1 end | macro start | macro end | AUC | "
                 "users slope>0 | p(end>start) t | users > crowd |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for _, r in summary.sort_values(["config", "update", "algorithm", "mode"]).iterrows():
        lines.append(f"| {r['config']} | {r['update']} | {r['mode']} | {r['algorithm']} | "
                     f"{r['f1_start_mean']:.3f} ± {r['f1_start_sd']:.3f} | {r['f1_end_mean']:.3f} ± {r['f1_end_sd']:.3f} | "
                     f"{r['f1_macro_start_mean']:.3f} | {r['f1_macro_end_mean']:.3f} | {r['auc_mean']:.3f} | "
                     f"{r['n_positive_slope']}/{r['n_users']} | {r['p_end_gt_start_t']:.3g} | "
                     f"{r.get('n_users_above_crowd', float('nan'))} |")
    lines.extend(_av_markdown(summary, refs))
    lines.append("")
    lines.append("## Paired one-sided tests, Bonferroni-corrected (a > b; lowest p first, p_t < .1 shown)")
    lines.append("")
    lines.append("| config | update | algorithm | measure | a | b | mean diff | p t (bonf) | p Wilcoxon (bonf) |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    shown = tests[tests["p_t_bonferroni"] < 0.1].sort_values("p_t_bonferroni") if len(tests) else tests
    for _, r in shown.iterrows():
        lines.append(f"| {r['config']} | {r['update']} | {r['algorithm']} | {r['measure']} | {r['a']} | {r['b']} | "
                     f"{r['mean_diff']:+.3f} | {r['p_t_bonferroni']:.3g} | {r['p_wilcoxon_bonferroni']:.3g} |")
    if shown.empty:
        lines.append("| (none) | | | | | | | | |")
    return "\n".join(lines) + "\n"


def _av_markdown(summary: pd.DataFrame, refs: pd.DataFrame) -> list[str]:
    """The regression members' section of summary.md (nothing without their metrics)."""
    if "rmse_arousal_end_mean" not in summary.columns:
        return []
    lines = ["", "## Arousal/valence of the regression members (song-level, against the listener's own values)", "",
             "RMSE and Kendall's tau-b of the mean (arousal, valence) of the regression members (the "
             "committee row: all of them) on the test songs; mean over users, start -> end; p: one-sided "
             "paired t-test that the end is better.", "",
             "| config | update | mode | algorithm | RMSE arousal | RMSE valence | tau arousal | tau valence | "
             "p RMSE a / v | p tau a / v |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    shown = summary.dropna(subset=["rmse_arousal_end_mean"]).sort_values(["config", "update", "algorithm", "mode"])
    for _, r in shown.iterrows():
        cells = [f"{r[f'{m}_start_mean']:.3f} -> {r[f'{m}_end_mean']:.3f}" for m in AV_METRICS]
        lines.append(f"| {r['config']} | {r['update']} | {r['mode']} | {r['algorithm']} | {' | '.join(cells)} | "
                     f"{r['p_rmse_arousal_improved_t']:.3g} / {r['p_rmse_valence_improved_t']:.3g} | "
                     f"{r['p_tau_arousal_improved_t']:.3g} / {r['p_tau_valence_improved_t']:.3g} |")
    own = refs[(refs["mode"] == "own")].dropna(subset=["rmse_arousal"]) if "rmse_arousal" in refs else refs.iloc[:0]
    for algorithm, block in own.groupby("algorithm"):
        per_user = block.groupby("user")[AV_METRICS].mean().mean()
        lines.append(f"| reference | | own | {algorithm} | "
                     + " | ".join(f"{per_user[m]:.3f}" for m in AV_METRICS) + " | | |")
    return lines


def plot_curves(table: pd.DataFrame, out_dir, metric: str = "f1_weighted",
                prefix: str = "learning_curves") -> list[str]:
    """One PNG per algorithm (`<prefix>_<algorithm>.png`): a panel per config x update, a line
    per mode, the two references; algorithms without a value of `metric` are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sims = table[~table["mode"].isin(["crowd", "own"])]
    refs = table[table["mode"].isin(["crowd", "own"])]
    crowd = refs[refs["mode"] == "crowd"].groupby("user")[metric].mean().mean()
    written = []
    panels = sims[["config", "update"]].drop_duplicates().sort_values(["config", "update"]).values.tolist()
    for algorithm in sorted(sims["algorithm"].unique()):
        if sims.loc[sims["algorithm"] == algorithm, metric].isna().all():
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False, sharey=True)
        own = refs[(refs["mode"] == "own") & (refs["algorithm"] == algorithm)].groupby("user")[metric].mean().mean()
        for ax, (config, update) in zip(axes[0], panels):
            block = sims[(sims["algorithm"] == algorithm) & (sims["config"] == config) & (sims["update"] == update)]
            for mode, m in block.groupby("mode"):
                per_user = m.groupby(["user", "iteration"]).agg(f1=(metric, "mean"), n=("n_annotations", "mean"))
                curve = per_user.groupby("iteration").mean()
                ax.plot(curve["n"], curve["f1"], marker="o", markersize=3, label=mode)
            if crowd == crowd:
                ax.axhline(crowd, color="black", linestyle="--", linewidth=1, label="crowd baseline")
            if own == own:
                ax.axhline(own, color="grey", linestyle=":", linewidth=1, label="own labels only")
            ax.set_title(f"{algorithm}: {config}, {update}")
            ax.set_xlabel("annotations given")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel(metric.replace("_", " "))
        axes[0][-1].legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = out_dir / f"{prefix}_{algorithm}.png"
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        plt.close(fig)
        written.append(str(path))
    return written


def write_report(table: pd.DataFrame, out_dir, plots: bool = True) -> dict:
    out_dir = Path(out_dir)
    summary, tests = summarize(table)
    refs = table[table["mode"].isin(["crowd", "own"])]
    with atomic.atomic_open(out_dir / "summary.csv", "w", encoding="utf-8", newline="") as handle:
        summary.to_csv(handle, index=False)
    with atomic.atomic_open(out_dir / "tests.csv", "w", encoding="utf-8", newline="") as handle:
        tests.to_csv(handle, index=False)
    atomic.write_text(out_dir / "summary.md", _markdown(summary, tests, refs))
    written = plot_curves(table, out_dir / "plots") if plots else []
    if plots and "rmse_arousal" in table.columns:
        # the regression members' arousal/valence curves beside the F1 ones
        for metric in ("rmse_arousal", "rmse_valence", "tau_arousal", "tau_valence"):
            written += plot_curves(table, out_dir / "plots", metric=metric, prefix=f"{metric}_curves")
    figures = []
    if plots:  # the paper-ready figures (figures.py): per config x update, PNG + PDF + SVG
        from .figures import write_figures

        figures = write_figures(table, out_dir / "figures",
                                metrics=["f1_weighted", *[m for m in AV_METRICS if m in table.columns]])
    return {"summary": str(out_dir / "summary.csv"), "tests": str(out_dir / "tests.csv"),
            "report": str(out_dir / "summary.md"), "plots": written, "figures": figures}
