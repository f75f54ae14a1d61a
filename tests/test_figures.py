"""The simulator's paper-ready figures (trompa_mer/simulate/figures.py, docs/experiments.md):
from a small generated results table, per config x update one figure of every algorithm and
mode with a mean +- sd band across listeners and one of the listeners' own curves, written as
PNG (300 dpi), PDF and SVG beside the old per-algorithm PNGs; and `--report-only DIR`."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from trompa_mer.simulate import RESULT_COLUMNS, write_report
from trompa_mer.simulate import figures

USERS = ["u1", "u2", "u3"]
MODES = ["mc", "rand"]
ALGORITHMS = ["gnb", "committee"]
CONFIGS = {"q4x2": 4, "q10x1": 10}  # config -> queries per iteration
UPDATES = ["batch", "cumulative"]


def results(regression: bool = False) -> pd.DataFrame:
    """A results.csv-like table: 3 listeners x 2 repeats x 2 modes x 2 updates x 2 configs x 2
    algorithms, F1 rising with the answers, and the crowd / own references."""
    rng = np.random.default_rng(0)
    rows = []
    for u, user in enumerate(USERS):
        for repeat in range(2):
            for mode in MODES:
                for update in UPDATES:
                    for config, queries in CONFIGS.items():
                        for algorithm in ALGORITHMS:
                            for iteration in range(int(config.split("x")[1]) + 1):
                                row = dict.fromkeys(RESULT_COLUMNS, 0)
                                row.update(user=user, repeat=repeat, mode=mode, update=update, config=config,
                                           queries=queries, algorithm=algorithm, iteration=iteration,
                                           n_annotations=queries * iteration,
                                           f1_weighted=0.2 + 0.1 * u + 0.02 * iteration + rng.uniform(0, 0.01),
                                           f1_macro=0.1 + 0.02 * iteration)
                                if regression:
                                    row["rmse_arousal"] = (np.nan if algorithm == "gnb"
                                                           else 0.8 - 0.01 * iteration)
                                rows.append(row)
        for mode, algorithms in (("crowd", ["crowd"]), ("own", ALGORITHMS)):
            for algorithm in algorithms:
                row = dict.fromkeys(RESULT_COLUMNS, 0)
                row.update(user=user, repeat=0, mode=mode, update="", config="", queries=0, algorithm=algorithm,
                           iteration=0, n_annotations=0, f1_weighted=0.45, f1_macro=0.3)
                if regression:
                    row["rmse_arousal"] = np.nan if algorithm != "committee" else 0.7
                rows.append(row)
    columns = RESULT_COLUMNS + (["rmse_arousal"] if regression else [])
    return pd.DataFrame(rows, columns=columns)


def _bands(ax):
    return [c for c in ax.collections if c.get_label().startswith("_band")]


def test_one_figure_per_configuration_with_every_algorithm_mode_and_a_band():
    table = results()
    built = figures.build_figures(table)
    stems = {f"f1_weighted_{c}_{u}" for c in CONFIGS for u in UPDATES}
    assert set(built) == stems | {f"{s}_listeners" for s in stems}
    try:
        fig = built["f1_weighted_q4x2_batch"]
        axes = fig.get_axes()
        assert [ax.get_title() for ax in axes] == ALGORITHMS  # one panel per algorithm, committee last
        for ax in axes:
            assert len(_bands(ax)) == len(MODES)  # one band per mode
            lines = {line.get_label(): line for line in ax.get_lines()}
            assert set(MODES) | {"crowd baseline", "own labels only"} <= set(lines)
            assert lines["crowd baseline"].get_ydata()[0] == pytest.approx(0.45)
        # the plotted mean and band are the mean +- sd over listeners of each listener's mean over repeats
        sims = table[(table["config"] == "q4x2") & (table["update"] == "batch") & (table["mode"] == "mc")
                     & (table["algorithm"] == "committee")]
        per_user = sims.groupby(["user", "iteration"])["f1_weighted"].mean().unstack("iteration")
        ax = axes[ALGORITHMS.index("committee")]
        mc = next(line for line in ax.get_lines() if line.get_label() == "mc")
        np.testing.assert_allclose(mc.get_xdata(), [0, 4, 8])
        np.testing.assert_allclose(mc.get_ydata(), per_user.mean().to_numpy())
        band = _bands(ax)[0]  # modes in a fixed order: mc first
        ys = band.get_paths()[0].vertices[:, 1]
        sd = per_user.std(ddof=1).to_numpy()
        assert ys.min() == pytest.approx((per_user.mean().to_numpy() - sd).min())
        assert ys.max() == pytest.approx((per_user.mean().to_numpy() + sd).max())
        assert "mean ± sd, 3 listeners" in axes[0].get_ylabel()

        grid = built["f1_weighted_q4x2_batch_listeners"]
        panels = grid.get_axes()
        assert len(panels) == len(ALGORITHMS) * len(MODES)
        for ax in panels:  # a thin line per listener and the mean
            labels = [line.get_label() for line in ax.get_lines()]
            assert labels.count("_listener") == len(USERS) and labels.count("mean") == 1
    finally:
        import matplotlib.pyplot as plt

        for fig in built.values():
            plt.close(fig)


def test_regression_metrics_draw_only_the_algorithms_that_have_them():
    built = figures.build_figures(results(regression=True), metric="rmse_arousal")
    try:
        assert len(built) == 2 * len(CONFIGS) * len(UPDATES)
        assert [ax.get_title() for ax in built["rmse_arousal_q10x1_cumulative"].get_axes()] == ["committee"]
    finally:
        import matplotlib.pyplot as plt

        for fig in built.values():
            plt.close(fig)
    assert figures.build_figures(results(), metric="rmse_arousal") == {}


def test_one_listener_draws_the_mean_without_a_band(tmp_path):
    table = results()
    table = table[table["user"] == "u1"]
    fig = figures.mean_figure(table, "q10x1", "batch")
    try:
        for ax in fig.get_axes():
            assert {"mc", "rand"} <= {line.get_label() for line in ax.get_lines()}
            assert all(b.get_paths() == [] for b in _bands(ax))  # sd of one value: NaN, nothing filled
        paths = figures.save_figure(fig, tmp_path / "one")
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    assert [p.rsplit(".", 1)[1] for p in paths] == ["png", "pdf", "svg"]


def _check_files(folder, stems):
    from PIL import Image

    for stem in stems:
        png = folder / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(png) as image:
            dpi = image.info["dpi"]
            width, height = image.size
        assert dpi[0] == pytest.approx(300, abs=0.5) and dpi[1] == pytest.approx(300, abs=0.5)
        pdf = (folder / f"{stem}.pdf").read_bytes()
        assert pdf[:5] == b"%PDF-" and pdf.rstrip().endswith(b"%%EOF")
        assert b"/Type3" not in pdf  # TrueType fonts embedded, as journals ask
        # the PNG is the PDF's page at 300 dpi (the PDF's MediaBox is in points, 72 per inch)
        box = pdf.split(b"/MediaBox [", 1)[1].split(b"]", 1)[0].split()
        assert (width, height) == (round(float(box[2]) / 72 * 300), round(float(box[3]) / 72 * 300))
        assert width >= 1000  # not a thumbnail (the old plots: 495 x 396)
        svg = folder / f"{stem}.svg"
        assert svg.read_bytes()[:5] == b"<?xml"
        root = ET.parse(svg).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.iter("{http://www.w3.org/2000/svg}text").__next__() is not None  # text kept as text


def test_write_report_writes_figures_in_three_formats_beside_the_old_plots(tmp_path):
    table = results()
    paths = write_report(table, tmp_path)
    stems = [f"f1_weighted_{c}_{u}{s}" for c in CONFIGS for u in UPDATES for s in ("", "_listeners")]
    assert sorted(paths["figures"]) == sorted(str(tmp_path / "figures" / f"{s}.{f}")
                                              for s in stems for f in ("png", "pdf", "svg"))
    _check_files(tmp_path / "figures", stems)
    # the old outputs are unchanged: one PNG per algorithm under plots/
    assert sorted(paths["plots"]) == sorted(str(tmp_path / "plots" / f"learning_curves_{a}.png") for a in ALGORITHMS)
    # the same run twice gives the same vector files (no dates, fixed SVG ids)
    first = {f: (tmp_path / "figures" / f).read_bytes() for f in ("f1_weighted_q10x1_batch.svg",
                                                                    "f1_weighted_q10x1_batch.pdf")}
    write_report(table, tmp_path)
    assert all((tmp_path / "figures" / f).read_bytes() == data for f, data in first.items())
    # no plots: no figures either
    none = write_report(table, tmp_path / "none", plots=False)
    assert none["figures"] == [] and not (tmp_path / "none" / "figures").exists()


def test_report_only_rewrites_the_report_from_results_csv(tmp_path, repo_root, script_env):
    table = results()
    run = tmp_path / "run"
    run.mkdir()
    table.to_csv(run / "results.csv", index=False)
    script = str(repo_root / "simulate_personalization.py")
    out = subprocess.run([sys.executable, script, "--report-only", str(run)], capture_output=True, text=True,
                         env=script_env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["figures"]) == 3 * 2 * len(CONFIGS) * len(UPDATES) and len(result["plots"]) == 2
    _check_files(run / "figures", ["f1_weighted_q4x2_cumulative", "f1_weighted_q4x2_cumulative_listeners"])
    summary = pd.read_csv(run / "summary.csv")
    assert len(summary) == len(CONFIGS) * len(UPDATES) * len(MODES) * len(ALGORITHMS)
    # a folder without results.csv: one error line; no -o and no --report-only: argparse's usage error
    out = subprocess.run([sys.executable, script, "--report-only", str(tmp_path / "empty")], capture_output=True,
                         text=True, env=script_env)
    assert out.returncode == 1 and out.stderr.startswith("error: --report-only") and "results.csv" in out.stderr
    out = subprocess.run([sys.executable, script, "-a", "x", "-i", "y"], capture_output=True, text=True,
                         env=script_env)
    assert out.returncode == 2 and "-o/--output" in out.stderr


def test_images_the_readme_and_docs_show_are_committed_and_small():
    """Every image a README/docs Markdown file shows exists in the repository and is a PNG of at
    most 300 KB (the benchmark figure in the README's measured section)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    shown = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", doc.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path = (doc.parent / target).resolve()
            assert path.is_file(), f"{doc.name} shows {target}, which does not exist"
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{target} is not a PNG"
            assert path.stat().st_size <= 300_000, f"{target}: {path.stat().st_size} bytes > 300 KB"
            shown.append(path)
    assert root / "docs" / "figures" / "trompa_benchmark_q4x15_cumulative.png" in shown
