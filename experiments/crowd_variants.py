#!/usr/bin/env python3
"""Crowd-member variants (trompa_mer.crowd.CROWD_VARIANTS) on a development set and on the
benchmark, side by side.

Protocol: variants are compared first on the development listeners (`--preset trompa-dev`:
20-79 annotated songs, disjoint from the benchmark's >= 80); the benchmark runs each variant
once and every result is reported, chosen or not. Each run is simulate_personalization.py with
--crowd-member --crowd-variant V -m mc rand --update cumulative (q=4 x 15 and q=10 x 6, 3
repeats); finished runs are reused (the simulator resumes).

Per cell: the crowd member's final weighted F1, the crowd baseline, listeners above it and the
one-sided paired p (t / Wilcoxon, uncorrected). "pooled" averages each listener's four cells
first and tests once (a secondary analysis: the cells share listeners and pre-training).

  python experiments/crowd_variants.py -o results/crowd-variants   # ~3 min per run at -j 2
"""
import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from trompa_mer.crowd import CROWD_VARIANTS  # noqa: E402


def run_variant(preset: str, variant: str, out: Path, jobs: int) -> None:
    if (out / "summary.csv").is_file():
        return
    subprocess.run([sys.executable, str(ROOT / "simulate_personalization.py"), "--preset", preset, "-o", str(out),
                    "--crowd-member", "--crowd-variant", variant, "-m", "mc", "rand", "--update", "cumulative",
                    "-j", str(jobs), "--no-plots", "--quiet"], check=True, stdout=subprocess.DEVNULL)


def final_by_user(out: Path) -> pd.DataFrame:
    """(user, cell) -> the crowd member's last-iteration F1 (mean over repeats), and the baseline."""
    table = pd.read_csv(out / "results.csv", dtype={"user": str})
    ref = table[table["mode"] == "crowd"].groupby("user")["f1_weighted"].mean()
    crowd = table[(table["algorithm"] == "crowd") & table["mode"].isin(["mc", "hc", "mix", "rand"])]
    last = crowd[crowd["iteration"] == crowd.groupby(["user", "repeat", "mode", "config"])["iteration"]
                 .transform("max")]
    end = last.groupby(["user", "config", "mode"])["f1_weighted"].mean().unstack(["config", "mode"])
    return end, ref.reindex(end.index)


def _p(diff: np.ndarray) -> tuple[float, float]:
    t = stats.ttest_1samp(diff, 0.0, alternative="greater").pvalue
    w = stats.wilcoxon(diff, alternative="greater").pvalue if np.any(diff) else 1.0
    return float(t), float(w)


def rows(preset: str, variant: str, out: Path) -> list[dict]:
    end, ref = final_by_user(out)
    cells = [(c, end[c].to_numpy()) for c in end.columns] + [(("pooled", ""), end.mean(axis=1).to_numpy())]
    result = []
    for (config, mode), values in cells:
        diff = values - ref.to_numpy()
        p_t, p_w = _p(diff)
        result.append({"set": preset, "variant": variant, "config": config, "mode": mode,
                       "n": len(values), "crowd": ref.mean(), "end": values.mean(), "diff": diff.mean(),
                       "above": f"{int((diff > 0).sum())}/{len(diff)}", "p_t": p_t, "p_wilcoxon": p_w})
    return result


def markdown(frame: pd.DataFrame) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:.2g}" if value < 0.01 else f"{value:.3f}"
        return str(value)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", required=True, help="folder of the runs (one subfolder each)")
    parser.add_argument("--variants", nargs="+", default=list(CROWD_VARIANTS), choices=list(CROWD_VARIANTS))
    parser.add_argument("--presets", nargs="+", default=["trompa-dev", "trompa-benchmark"],
                        choices=["trompa-dev", "trompa-benchmark"])
    parser.add_argument("-j", "--jobs", type=int, default=2, help="simulator processes (default 2)")
    args = parser.parse_args()
    out = Path(args.output)
    table = []
    for preset in args.presets:
        for variant in args.variants:
            folder = out / f"{preset}-{variant}"
            print(f"{preset} / {variant} ...", file=sys.stderr, flush=True)
            run_variant(preset, variant, folder, args.jobs)
            table += rows(preset, variant, folder)
    frame = pd.DataFrame(table)
    frame.to_csv(out / "crowd_variants.csv", index=False)
    print(markdown(frame))
    return 0


if __name__ == "__main__":
    sys.exit(main())
