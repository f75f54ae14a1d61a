#!/usr/bin/env python
"""Mutation testing of the core modules with mutmut (docs/testing.md).

    python tools/mutation.py                       # every target of tools/mutation.toml
    python tools/mutation.py consensus statistics  # some targets
    python tools/mutation.py --tests-from 02139ab  # the same, with that commit's test files
    python tools/mutation.py --list                # the targets and their test selections
    python tools/mutation.py --rerun-survivors consensus   # after adding tests: the survivors again

Each target runs in a throw-away copy of the working tree (`--work DIR`, default
/tmp/mer-mutation/<target>), never in the repository: the files git tracks or would track
are copied there, a [tool.mutmut] section naming the target's file and test selection is
added to the copy's pyproject.toml, and `mutmut run --max-children 1` mutates only the
target's functions (one process: the development machines have 2 shared cores). The counts
per target (killed, survived, timeout, no tests, ...) are printed as a Markdown table and
written to <work>/summary.json with every survivor's name; `--show` prints each survivor's
diff (`mutmut show`) so it can be killed by a test or explained as equivalent.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tools" / "mutation.toml"
# mutmut's exit codes of a mutant run (mutmut/stats.py), the ones we report
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault", None: "not checked"}
COLUMNS = ["killed", "survived", "timeout", "no tests", "suspicious", "segfault", "not checked"]


def targets() -> dict:
    return tomllib.loads(CONFIG.read_text(encoding="utf-8"))


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [p for p in out.split("\0") if p and not p.startswith((".venv", "mutants/"))]


def copy_tree(work: Path, only_tests: bool = False) -> None:
    for rel in tracked_files():
        src = ROOT / rel
        if only_tests and not rel.startswith("tests/"):
            continue
        if src.is_file() and not src.is_symlink():
            dst = work / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def prepare(work: Path, name: str, target: dict, tests_from: str | None, rerun: bool = False) -> list[str]:
    """Copy the tree into `work` and configure mutmut there; returns the test selection.

    rerun: keep `work` and its mutants (the source must not have changed), replace its tests
    with the repository's current ones and drop mutmut's test statistics, so that the named
    mutants are run again against the new tests.
    """
    if rerun:
        if not (work / "summary.json").exists():
            raise SystemExit(f"{name}: no earlier run in {work} to rerun the survivors of")
        for source in (ROOT / "trompa_mer").rglob("*.py"):
            copied = work / source.relative_to(ROOT)
            if copied.read_bytes() != source.read_bytes():
                raise SystemExit(f"{name}: {source.relative_to(ROOT)} changed since that run; run it afresh")
        shutil.rmtree(work / "tests")
        shutil.rmtree(work / "mutants" / "tests", ignore_errors=True)
        copy_tree(work, only_tests=True)
        shutil.copytree(work / "tests", work / "mutants" / "tests")
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
        text = (work / "pyproject.toml").read_text(encoding="utf-8")
        (work / "pyproject.toml").write_text(text.split("\n[tool.mutmut]")[0], encoding="utf-8")
        shutil.copy2(work / "pyproject.toml", work / "mutants" / "pyproject.toml")
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        copy_tree(work)
    if tests_from:
        shutil.rmtree(work / "tests")
        archive = subprocess.run(["git", "archive", tests_from, "tests"], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work)], input=archive, check=True)
    selection = target.get("before_tests" if tests_from and "before_tests" in target else "tests")
    selection = [t for t in selection if (work / t.split("::")[0]).exists()]
    if not selection:
        raise SystemExit(f"{name}: none of its tests exist in this tree")
    also_copy = ["settings.py", "models", "tools", *sorted(p.name for p in ROOT.glob("*.py"))]
    section = {
        "source_paths": ["trompa_mer"],
        "only_mutate": [target["file"]],
        "also_copy": also_copy,
        "pytest_add_cli_args_test_selection": selection,
        # -n 0: the suite's own addopts run two xdist workers; mutmut needs the tests in-process
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-W", "ignore", "-n", "0"],
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"] + [f"{key} = {json.dumps(value)}" for key, value in section.items()]
    with open(work / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    if rerun:
        shutil.copy2(work / "pyproject.toml", work / "mutants" / "pyproject.toml")
    return selection


def count(work: Path, target: dict) -> tuple[Counter, list[str]]:
    meta = work / "mutants" / (target["file"] + ".meta")
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    counts, survivors = Counter(), []
    for key, code in sorted(codes.items()):
        if not any(fnmatch.fnmatchcase(key, pattern) for pattern in target["functions"]):
            continue
        status = STATUS.get(code, "suspicious")
        counts[status] += 1
        if status in ("survived", "no tests", "suspicious"):
            survivors.append(f"{status}: {key}")
    return counts, survivors


def run_target(name: str, target: dict, work: Path, tests_from: str | None, show: bool, rerun: bool = False) -> dict:
    previous = json.loads((work / "summary.json").read_text()) if rerun and (work / "summary.json").exists() else None
    if rerun and previous is None:
        raise SystemExit(f"{name}: no earlier run in {work} to rerun the survivors of")
    selection = prepare(work, name, target, tests_from, rerun)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MER_JOBS": "1"}
    globs = [] if target["functions"] == ["*"] else target["functions"]
    if rerun:  # the survivors among the target's functions (as tools/mutation.toml names them now)
        globs = [line.split(": ", 1)[1] for line in count(work, target)[1]]
        if not globs:
            return {**previous, "counts": dict(count(work, target)[0]), "survivors": []}
    print(f"== {name}: mutating {target['file']} {globs or '(whole file)'}; tests: {' '.join(selection)}",
          flush=True)
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "1", *globs], cwd=work,
                         env=env, capture_output=True, text=True)
    (work / "mutmut.log").write_text(run.stdout + run.stderr)
    if not (work / "mutants" / (target["file"] + ".meta")).exists():
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        raise SystemExit(f"{name}: mutmut did not run (log: {work / 'mutmut.log'})")
    counts, survivors = count(work, target)
    summary = {"target": name, "file": target["file"], "functions": target["functions"],
               "tests": selection, "tests_from": tests_from, "counts": dict(counts), "survivors": survivors}
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    if show:
        for line in survivors:
            key = line.split(": ", 1)[1]
            diff = subprocess.run([sys.executable, "-m", "mutmut", "show", key], cwd=work, env=env,
                                  capture_output=True, text=True).stdout
            print(f"--- {line}\n{diff}")
    return summary


def score(counts: dict) -> str:
    total = sum(counts.values())
    caught = counts.get("killed", 0) + counts.get("timeout", 0)
    return f"{100 * caught / total:.0f} %" if total else "-"


def main(argv=None) -> None:
    all_targets = targets()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"targets (default all: {', '.join(all_targets)})")
    parser.add_argument("--tests-from", metavar="COMMIT", help="use the test files of this commit (a 'before' run)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mer-mutation"),
                        help="folder for the working copies (default /tmp/mer-mutation)")
    parser.add_argument("--show", action="store_true", help="print every survivor's diff")
    parser.add_argument("--rerun-survivors", action="store_true",
                        help="run only the last run's survivors again, against the current tests (same source)")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args(argv)
    names = args.names or list(all_targets)
    unknown = [n for n in names if n not in all_targets]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(all_targets)}")
    if args.list:
        for name in names:
            print(f"{name}: {all_targets[name]['file']} {all_targets[name]['functions']}\n  "
                  + "\n  ".join(all_targets[name]["tests"]))
        return
    suffix = f"-before-{args.tests_from}" if args.tests_from else ""
    results = [run_target(n, all_targets[n], args.work / f"{n}{suffix}", args.tests_from, args.show,
                          args.rerun_survivors) for n in names]
    print("\n| target | file | mutants | " + " | ".join(COLUMNS) + " | score |")
    print("|---|---|---|" + "---|" * len(COLUMNS) + "---|")
    for r in results:
        c = r["counts"]
        print(f"| {r['target']} | {r['file']} | {sum(c.values())} | "
              + " | ".join(str(c.get(k, 0)) for k in COLUMNS) + f" | {score(c)} |")
    for r in results:
        if r["survivors"]:
            print(f"\n{r['target']}:\n  " + "\n  ".join(r["survivors"]))


if __name__ == "__main__":
    main()
