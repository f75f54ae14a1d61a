"""Paper-ready figures of a simulation's results table (results.csv).

Per configuration (config = q x e, and update strategy) two figures:

- `<metric>_<config>_<update>`: one panel per algorithm (shared y axis), a line per query mode:
  the mean over listeners of each listener's learning curve (each listener's curve is the mean
  over repeats), with a band of mean +- 1 sd across listeners, against the answers given; the
  crowd baseline and the algorithm's own-labels model as horizontal lines.
- `<metric>_<config>_<update>_listeners`: a grid of algorithms (rows) x modes (columns), a thin
  line per listener and the mean in bold.

Each is written as PNG (DPI dots per inch), PDF (TrueType fonts, no Type 3) and SVG (text kept
as text), under `figures/` of the report's folder. The builders return matplotlib Figures, so
that a caller (or a test) can inspect or restyle them before saving.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import atomic
from ..consensus import MODES

DPI = 300
FORMATS = ("png", "pdf", "svg")
PANEL = (2.6, 2.2)  # inches per panel, 8-pt text: four panels scaled to a 7-inch page width keep 5-pt text
REFERENCE_MODES = ("crowd", "own")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# savefig settings for journals: embedded TrueType in PDF, editable text in SVG, and files
# that do not change from one run to the next (no creation date, fixed SVG ids)
_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none", "svg.hashsalt": "trompa-mer",
       "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7,
       "xtick.labelsize": 7, "ytick.labelsize": 7}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _ordered_modes(modes) -> list[str]:
    known = [m for m in MODES if m in set(modes)]
    return known + sorted(set(modes) - set(known))


def _style(modes: list[str]) -> dict:
    """A fixed colour (the colour-blind-safe Okabe-Ito palette) and marker per mode, the same in every panel
    (the markers tell the modes apart in greyscale print)."""
    colors = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
    return {m: (colors[i % len(colors)], _MARKERS[i % len(_MARKERS)]) for i, m in enumerate(modes)}


def listener_curves(table: pd.DataFrame, metric: str = "f1_weighted") -> pd.DataFrame:
    """Per (config, update, algorithm, mode, user, iteration): the listener's mean over repeats of
    `metric` and of the answers given (n_annotations)."""
    sims = table[~table["mode"].isin(REFERENCE_MODES)]
    return (sims.groupby(["config", "update", "algorithm", "mode", "user", "iteration"])
            .agg(value=(metric, "mean"), answers=("n_annotations", "mean")).reset_index())


def band(curves: pd.DataFrame) -> pd.DataFrame:
    """Across listeners, per iteration: answers (mean), mean, sd (ddof=1; NaN for one listener),
    lower = mean - sd, upper = mean + sd, and n (listeners with a value)."""
    grouped = curves.groupby("iteration")
    out = pd.DataFrame({"answers": grouped["answers"].mean(), "mean": grouped["value"].mean(),
                        "sd": grouped["value"].std(ddof=1), "n": grouped["value"].count()})
    out["lower"] = out["mean"] - out["sd"]
    out["upper"] = out["mean"] + out["sd"]
    return out


def _references(table: pd.DataFrame, metric: str):
    refs = table[table["mode"].isin(REFERENCE_MODES)]
    crowd = refs[refs["mode"] == "crowd"].groupby("user")[metric].mean().mean() if len(refs) else float("nan")
    own = refs[refs["mode"] == "own"].groupby(["algorithm", "user"])[metric].mean().groupby("algorithm").mean()
    return crowd, own


def _algorithms(curves: pd.DataFrame) -> list[str]:
    """Algorithms with a value of the metric, the committee rows last."""
    present = sorted(curves.dropna(subset=["value"])["algorithm"].unique())
    return [a for a in present if a not in ("committee", "full")] + [a for a in ("committee", "full") if a in present]


def _label(metric: str) -> str:
    return {"f1_weighted": "weighted F1", "f1_macro": "macro F1"}.get(metric, metric.replace("_", " "))


def _selection(table: pd.DataFrame, config: str, update: str, metric: str):
    """The per-listener curves of one configuration and update, the algorithms and modes
    drawn, and each mode's (colour, marker): what both figure kinds start from."""
    curves = listener_curves(table, metric)
    curves = curves[(curves["config"] == config) & (curves["update"] == update)]
    modes = _ordered_modes(curves["mode"].unique())
    return curves, _algorithms(curves), modes, _style(modes)


def mean_figure(table: pd.DataFrame, config: str, update: str, metric: str = "f1_weighted"):
    """One panel per algorithm, a line per mode (mean over listeners) with a mean +- sd band."""
    plt = _pyplot()
    curves, algorithms, modes, style = _selection(table, config, update, metric)
    crowd, own = _references(table, metric)
    n_users = curves["user"].nunique()
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(1, len(algorithms), figsize=(PANEL[0] * len(algorithms), PANEL[1] + 0.6),
                                 squeeze=False, sharey=True, layout="constrained")
        for ax, algorithm in zip(axes[0], algorithms):
            for mode in modes:
                block = curves[(curves["algorithm"] == algorithm) & (curves["mode"] == mode)]
                if block.empty:
                    continue
                b = band(block)
                color, marker = style[mode]
                ax.fill_between(b["answers"], b["lower"], b["upper"], color=color, alpha=0.15, linewidth=0,
                                label=f"_band {mode}")
                ax.plot(b["answers"], b["mean"], color=color, marker=marker, markersize=3, linewidth=1.2,
                        label=mode)
            if crowd == crowd:
                ax.axhline(crowd, color="black", linestyle="--", linewidth=0.8, label="crowd baseline")
            own_value = own.get(algorithm, float("nan"))
            if own_value == own_value:
                ax.axhline(own_value, color="grey", linestyle=":", linewidth=0.9, label="own labels only")
            ax.set_title(algorithm)
            ax.set_xlabel("answers given")
            ax.grid(alpha=0.3, linewidth=0.5)
        axes[0][0].set_ylabel(f"{_label(metric)} (mean ± sd, {n_users} listeners)")
        handles, labels = {}, []
        for ax in axes[0]:
            for h, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, h)
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(len(handles), 6),
                   frameon=False)
        fig.suptitle(f"{config}, {update} update")
    return fig


def listener_figure(table: pd.DataFrame, config: str, update: str, metric: str = "f1_weighted"):
    """Algorithms (rows) x modes (columns): a thin line per listener, their mean in bold."""
    plt = _pyplot()
    curves, algorithms, modes, style = _selection(table, config, update, metric)
    with plt.rc_context(_RC):
        fig, axes = plt.subplots(len(algorithms), len(modes), squeeze=False, sharex=True, sharey=True,
                                 figsize=(PANEL[0] * 0.8 * len(modes), PANEL[1] * 0.8 * len(algorithms) + 0.4),
                                 layout="constrained")
        for row, algorithm in enumerate(algorithms):
            for col, mode in enumerate(modes):
                ax = axes[row][col]
                block = curves[(curves["algorithm"] == algorithm) & (curves["mode"] == mode)]
                color, _ = style[mode]
                for _, user_curve in block.groupby("user"):
                    user_curve = user_curve.sort_values("iteration")
                    ax.plot(user_curve["answers"], user_curve["value"], color=color, linewidth=0.5, alpha=0.45,
                            label="_listener")
                if not block.empty:
                    b = band(block)
                    ax.plot(b["answers"], b["mean"], color="black", linewidth=1.4, label="mean")
                if row == 0:
                    ax.set_title(mode)
                if col == 0:
                    ax.set_ylabel(f"{algorithm}\n{_label(metric)}")
                if row == len(algorithms) - 1:
                    ax.set_xlabel("answers given")
                ax.grid(alpha=0.3, linewidth=0.5)
        fig.suptitle(f"{config}, {update} update: one line per listener ({curves['user'].nunique()}), mean in black")
    return fig


def build_figures(table: pd.DataFrame, metric: str = "f1_weighted") -> dict:
    """{file stem: Figure} for every config x update with values of `metric` (none without)."""
    sims = table[~table["mode"].isin(REFERENCE_MODES)]
    if metric not in sims or sims[metric].isna().all():
        return {}
    figures = {}
    for config, update in sims[["config", "update"]].drop_duplicates().sort_values(["config", "update"]).values:
        stem = f"{metric}_{config}_{update}" if update else f"{metric}_{config}"
        figures[stem] = mean_figure(table, config, update, metric)
        figures[f"{stem}_listeners"] = listener_figure(table, config, update, metric)
    return figures


def save_figure(fig, stem, dpi: int = DPI, formats=FORMATS) -> list[str]:
    """Write `stem.<format>` for each format (atomically); returns the paths."""
    plt = _pyplot()
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context(_RC):
        for fmt in formats:
            path = stem.with_name(f"{stem.name}.{fmt}")
            metadata = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[fmt]
            with atomic.atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=dpi, format=fmt, metadata=metadata)
            written.append(str(path))
    return written


def write_figures(table: pd.DataFrame, out_dir, metrics=("f1_weighted",), dpi: int = DPI) -> list[str]:
    """Build, save (PNG, PDF, SVG) and close the figures of every metric; returns the paths."""
    plt = _pyplot()
    written = []
    for metric in metrics:
        for stem, fig in build_figures(table, metric).items():
            try:
                written += save_figure(fig, Path(out_dir) / stem, dpi=dpi)
            finally:
                plt.close(fig)
    return written
