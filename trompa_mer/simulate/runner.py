"""Running an experiment: jobs of one user x one mode, part files and resuming, and the
executors that run the jobs (in this process, in joblib workers or on a Dask cluster)."""
from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import pandas as pd

from .. import atomic
from ..committee import Committee
from ..errors import MERError
from ..strategies import needs
from .config import ExperimentConfig
from .data import MIN_PRETRAIN_SONGS, FeatureTable, eligible_users, prepare_annotations, pretraining_labels
from .protocol import (RESULT_COLUMNS, Context, pretrain_for_user, reference_rows, regression_algorithms,
                       simulatable, simulate_user_mode)
from .report import write_report


# --- one job -------------------------------------------------------------------------------
def _single_threaded():
    """One thread per task: tasks run in parallel instead, and XGBoost's default of every core
    makes each small DMatrix cost tens of milliseconds of OpenMP start-up on a busy machine.
    Members validate their inputs (finite, 2-D) themselves; sklearn's re-validation on every
    tiny update/predict is a large share of the run time."""
    import contextlib

    import sklearn
    from threadpoolctl import threadpool_limits

    stack = contextlib.ExitStack()
    stack.enter_context(threadpool_limits(limits=1))
    stack.enter_context(sklearn.config_context(skip_parameter_validation=True, assume_finite=True))
    return stack


def run_pretrain(ctx: Context, user) -> Committee:
    with _single_threaded():
        return pretrain_for_user(ctx, user)


def run_job(ctx: Context, job: tuple, pretrained: Committee | None = None) -> pd.DataFrame:
    """One user x one mode (or the user's reference points)."""
    user, mode = job
    with _single_threaded():
        if mode == "reference":
            return reference_rows(ctx, user)
        return simulate_user_mode(ctx, user, mode, pretrained)


# --- the experiment: jobs, parts, resume ---------------------------------------------------
def _part_name(job) -> str:
    user, mode = job
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(user))[:40]
    # "mc:kl-max" -> "mc_kl-max": a file name on every system; the plain modes are unchanged
    return f"{safe}-{zlib.crc32(str(user).encode()):08x}__{re.sub(r'[^A-Za-z0-9_+-]', '_', mode)}.csv"


def _write_part(parts_dir: Path, job, frame: pd.DataFrame) -> None:
    with atomic.atomic_open(parts_dir / _part_name(job), "w", encoding="utf-8", newline="") as handle:
        frame.to_csv(handle, index=False)


def read_results(out_dir) -> pd.DataFrame:
    """All finished parts of a run, as one tidy table."""
    parts = sorted((Path(out_dir) / "parts").glob("*.csv"))
    if not parts:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    frames = [pd.read_csv(p, dtype={"user": str, "update": str, "config": str}, keep_default_na=False,
                          na_values=[""]) for p in parts]
    table = pd.concat(frames, ignore_index=True)
    for col in ("update", "config"):
        table[col] = table[col].fillna("")
    return table


def run_experiment(annotations: pd.DataFrame, features: FeatureTable, config: ExperimentConfig, out_dir,
                   committee: Committee | None = None, jobs: int = 1, backend: str = "joblib",
                   scheduler: str | None = None, progress: bool = True, max_jobs: int | None = None,
                   plots: bool = True, audio=None) -> dict:
    """Run (or resume) an experiment into `out_dir`; returns the summary's paths and counts.

    audio: song id -> 16 kHz float32 samples (audio_cache.AudioCache or a dict), which the
    given committee's audio members read; a committee with audio members is refused without
    it, or when a simulated user's song has no audio.

    max_jobs: stop after that many new jobs (to test resuming; None = all).
    """
    config.validate()
    wanting_av = [s for s in config.strategies if "av" in needs(s)]
    if wanting_av and not (regression_algorithms(config.algorithms)
                           or (committee is not None and committee.of_target("av"))):
        raise MERError(f"--strategy {' '.join(wanting_av)}: needs arousal/valence regression members "
                       f"(--algorithms ... sgd-av or xgb-av, or a --committee with them)")
    if committee is None and config.pretrain != "leave-user-out":
        raise MERError("committee: give a pre-trained committee or --pretrain leave-user-out")
    if committee is not None:
        config.pretrain = None
    out_dir = Path(out_dir)
    parts_dir = out_dir / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    # regression members read arousal/valence (pre-training targets, the listener's own values)
    with_values = bool(regression_algorithms(config.algorithms)) or (
        committee is not None and bool(committee.of_target("av")))
    annotations = prepare_annotations(annotations, values=with_values)
    if committee is not None and features.X.shape[1] != len(committee.feature_names):
        raise MERError(f"features: the committee expects {len(committee.feature_names)} columns, "
                       f"the feature table has {features.X.shape[1]}")
    users = eligible_users(annotations, features, config.min_annotations, config.max_annotations)
    if config.users:
        missing = sorted(set(map(str, config.users)) - set(users))
        if missing:
            raise MERError(f"users: {', '.join(missing[:5])} not found with at least "
                           f"{config.min_annotations} annotated songs that have features")
        users = [u for u in users if u in set(map(str, config.users))]
    skipped = {}
    if committee is None:
        # leave-user-out needs songs the user did not annotate; a user who annotated (almost)
        # everything cannot be simulated this way and is reported, not fatal
        for user in users:
            n = len(pretraining_labels(annotations, user, features))
            if n < MIN_PRETRAIN_SONGS:
                skipped[user] = f"{n} songs for leave-user-out pre-training (< {MIN_PRETRAIN_SONGS})"
        users = [u for u in users if u not in skipped]
    if not users:
        raise MERError(f"annotations: no user has at least {config.min_annotations} annotated songs "
                       f"with features" + (" and songs left for pre-training" if skipped else ""))
    if committee is not None:
        simulated = annotations[annotations["user"].isin(users) & annotations["song"].map(features.has)]
        simulatable(committee, audio, sorted(set(simulated["song"])))
    fingerprint = {"config": config.fingerprint(), "users": users,
                   "n_annotations": int(len(annotations)), "n_feature_columns": int(features.X.shape[1])}
    run_file = out_dir / "run.json"
    if run_file.exists():
        previous = json.loads(run_file.read_text(encoding="utf-8"))
        if previous != fingerprint:
            raise MERError(f"{run_file}: this folder holds a run with other settings or data; "
                           f"choose another output folder or delete it")
    else:
        atomic.write_json(run_file, fingerprint)
    songs = sorted(set(annotations["song"]))
    ctx = Context(config, annotations, features.subset(songs), committee,
                  key=str(zlib.crc32(json.dumps(fingerprint, sort_keys=True).encode())),
                  audio=audio if committee is not None and committee.of_kind("audio") else None)
    all_jobs = [(u, m) for u in users for m in ["reference", *config.job_modes()]]
    done = {p.name for p in parts_dir.glob("*.csv")}
    todo = [j for j in all_jobs if _part_name(j) not in done]
    if max_jobs is not None:
        todo = todo[:max_jobs]
    with _Executor(ctx, jobs, backend, scheduler) as executor:
        committees = {}
        if ctx.committee is None or config.crowd_member:
            pending = sorted({u for u, m in todo if m != "reference"})
            for user, committee_of_user in _progress(executor.map(run_pretrain, pending), len(pending),
                                                     "pre-training", progress):
                committees[user] = committee_of_user
        tasks = [(job, committees.get(job[0])) for job in todo]
        for (job, _), frame in _progress(executor.map(_run_task, tasks), len(tasks), "user x mode", progress):
            _write_part(parts_dir, job, frame)
    finished = {p.name for p in parts_dir.glob("*.csv")}
    complete = all(_part_name(j) in finished for j in all_jobs)
    result = {"users": len(users), "skipped_users": skipped, "jobs": len(all_jobs), "jobs_run": len(todo), "complete": complete}
    if complete:
        table = read_results(out_dir)
        with atomic.atomic_open(out_dir / "results.csv", "w", encoding="utf-8", newline="") as handle:
            table.to_csv(handle, index=False)
        result.update(write_report(table, out_dir, plots=plots))
    return result


def _run_task(ctx: Context, task):
    job, pretrained = task
    return run_job(ctx, job, pretrained)


def _progress(iterable, total, desc, enabled):
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="job", disable=not enabled) as bar:
        for item in iterable:
            yield item
            bar.update()


class _Executor:
    """fn(ctx, item) over items, results as they finish: in this process, joblib or Dask."""

    def __init__(self, ctx, jobs: int, backend: str, scheduler):
        if backend not in ("joblib", "dask", "serial"):
            raise MERError(f"backend: expected joblib or dask, got {backend!r}")
        if backend == "dask" and not scheduler:
            raise MERError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        self.ctx, self.jobs, self.backend, self.scheduler = ctx, jobs, backend, scheduler
        self.client = self.ctx_ref = None

    def __enter__(self):
        if self.backend == "dask":
            from dask.distributed import Client

            own = not isinstance(self.scheduler, Client)
            self.client = Client(self.scheduler) if own else self.scheduler
            self._own_client = own
            self.ctx_ref = self.client.scatter(self.ctx, broadcast=True)
        return self

    def __exit__(self, *exc):
        if self.client is not None and self._own_client:
            self.client.close()

    def map(self, fn, items):
        items = list(items)
        if self.backend == "dask":
            from dask.distributed import as_completed

            futures = {self.client.submit(fn, self.ctx_ref, item, pure=False): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                yield items[futures[future]], future.result()
        elif self.jobs > 1 and len(items) > 1:
            from joblib import Parallel, delayed

            def tagged(i, item):
                return i, fn(self.ctx, item)

            results = Parallel(n_jobs=self.jobs, return_as="generator_unordered")(
                delayed(tagged)(i, item) for i, item in enumerate(items))
            for i, result in results:
                yield items[i], result
        else:
            for item in items:
                yield item, fn(self.ctx, item)
