"""Window features: openSMILE IS13 ComParE low-level descriptors, aggregated per 1 s window.

The layout is the reference system's (and DEAM's): one row every 50 frames (0.5 s), the row
starting at frame s summarising frames s..s+100 inclusive (101 frames, fewer at the end) by the
standard deviation (ddof 0) and mean of each of the 130 descriptors (65 LLDs and their deltas),
written as `frameTime` + `<name>_stddev`, `<name>_amean` pairs, `;`-separated.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import atomic
from .errors import MERError

FRAMES_PER_HOP = 50          # 0.5 s between rows at openSMILE's 10 ms frame step
FRAMES_PER_WINDOW = 101      # frames s..s+100 inclusive, as the reference aggregation
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".oga", ".aiff", ".aif")

# The 65 IS13 ComParE low-level descriptors in openSMILE's order (a fact of the feature set;
# tests check it against the installed openSMILE so a changed build cannot slip through).
LLD_NAMES = (
    ["F0final_sma", "voicingFinalUnclipped_sma", "jitterLocal_sma", "jitterDDP_sma",
     "shimmerLocal_sma", "logHNR_sma", "audspec_lengthL1norm_sma", "audspecRasta_lengthL1norm_sma",
     "pcm_RMSenergy_sma", "pcm_zcr_sma"]
    + [f"audSpec_Rfilt_sma[{i}]" for i in range(26)]
    + ["pcm_fftMag_fband250-650_sma", "pcm_fftMag_fband1000-4000_sma"]
    + [f"pcm_fftMag_spectralRollOff{p}_sma" for p in ("25.0", "50.0", "75.0", "90.0")]
    + [f"pcm_fftMag_{name}_sma" for name in (
        "spectralFlux", "spectralCentroid", "spectralEntropy", "spectralVariance",
        "spectralSkewness", "spectralKurtosis", "spectralSlope", "psySharpness",
        "spectralHarmonicity")]
    + [f"mfcc_sma[{i}]" for i in range(1, 15)]
)


def _delta_name(name: str) -> str:
    # openSMILE appends `_de` before an index: mfcc_sma[3] -> mfcc_sma_de[3]
    if name.endswith("]"):
        base, index = name.split("[", 1)
        return f"{base}_de[{index}"
    return f"{name}_de"


DESCRIPTOR_NAMES = LLD_NAMES + [_delta_name(n) for n in LLD_NAMES]          # 130
FEATURE_NAMES = [f"{n}_{stat}" for n in DESCRIPTOR_NAMES for stat in ("stddev", "amean")]  # 260
DEAM_MFCC_PREFIX = "pcm_fftMag_mfcc_sma"


def song_id_from_path(path) -> str:
    """A song's id: its file name without extension, lowercased."""
    return Path(path).stem.lower()


# --- decoding -----------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence the decoder library's own stderr chatter (mpg123 prints several lines on a bad
    file), so a failure reaches the user as our one clear line."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_audio(path) -> tuple[np.ndarray, int]:
    """Decode wav/mp3/flac/ogg to mono float32 at the file's own rate (never resampled)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise MERError(f"{path}: audio file not found")
    try:
        with _quiet_c_stderr():
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:
        # libsndfile reports unsupported and corrupt files alike, sometimes as "not a regular
        # file", which would mislead; say what we know.
        raise MERError(f"{path}: cannot decode audio (unsupported format or corrupt file; "
                       f"expected wav, mp3, flac or ogg)")
    if data.shape[1] > 1:
        data = data.mean(axis=1, keepdims=True)   # stereo -> mono by averaging channels
    signal = np.ascontiguousarray(data[:, 0])
    if signal.size < int(np.ceil(rate * 0.010)):
        raise MERError(f"{path}: audio is shorter than one 10 ms frame ({signal.size} samples at {rate} Hz)")
    if not np.isfinite(signal).all():
        raise MERError(f"{path}: audio holds non-finite samples")
    return signal, int(rate)


# --- openSMILE ----------------------------------------------------------------------------

def _config_text(opensmile_config_dir: str) -> str:
    # One pass over the audio for LLDs and deltas. The stock IS13 config also computes the
    # utterance functionals, which we do not use; including only its LLD part saves ~30 %.
    core = Path(opensmile_config_dir) / "is09-13" / "IS13_ComParE_core.lld.conf.inc"
    return "\n".join([
        "[componentInstances:cComponentManager]",
        "instance[dataMemory].type=cDataMemory",
        "printLevelStats=0",
        r"\{\cm[source{?}:include external source]}",
        rf"\{{{core}}}",
        "[componentInstances:cComponentManager]",
        "instance[mer_lld_all].type=cVectorConcat",
        "[mer_lld_all:cVectorConcat]",
        "reader.dmLevel = is13_lld_nzsmo;is13_lldA_smo;is13_lldB_smo;"
        "is13_lld_nzsmo_de;is13_lldA_smo_de;is13_lldB_smo_de",
        "writer.dmLevel = mer_lld_all",
        "includeSingleElementFields = 1",
        r"\{\cm[sink{?}:include external sink]}",
        "",
    ])


@functools.lru_cache(maxsize=1)
def _smile():
    import opensmile

    config_dir = Path(opensmile.__file__).parent / "core" / "config"
    text = _config_text(str(config_dir))
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"trompa_mer_is13_lld_{digest}.conf"
    if not path.exists():
        atomic.write_text(path, text)
    smile = opensmile.Smile(feature_set=str(path), feature_level="mer_lld_all")
    if list(smile.feature_names) != DESCRIPTOR_NAMES:
        raise MERError("installed openSMILE gives IS13 descriptors in an unexpected order; "
                       "pin opensmile==2.6.0 (requirements.txt)")
    return smile


def extract_llds(signal: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """openSMILE IS13 LLDs + deltas: (frame start times in s, frames × 130 float64)."""
    # The wrapper converts to int16 by multiplying with 32768, so a full-scale +1.0 would wrap
    # to -32768; clip to the largest value int16 can hold.
    signal = np.clip(np.asarray(signal, dtype=np.float32), -1.0, 32767 / 32768)
    frame = _smile().process_signal(signal, rate)
    values = frame.to_numpy(dtype=np.float64)
    if values.shape[0] == 0 or np.isnan(values).all():
        raise MERError("audio too short for openSMILE to produce a single frame")
    starts = frame.index.get_level_values("start").total_seconds().to_numpy()
    return starts, values


def aggregate_windows(llds: np.ndarray) -> np.ndarray:
    """Per window: stddev (ddof 0) and mean of each column, interleaved as in FEATURE_NAMES.

    Vectorized with a strided view: the frames are padded with NaN to whole windows, viewed as
    (rows, columns, 101) without copying, and reduced with nan-aware statistics, so the short
    windows at the end ignore the padding. Two-pass statistics (not E[x²]-E[x]²) keep a
    constant descriptor at zero deviation: exactly 0 for a constant 0, otherwise within the
    rounding of its mean (about 1e-15 of the value, where E[x²]-E[x]² gives 1e-8 or NaN).
    """
    llds = np.asarray(llds, dtype=np.float64)
    n_frames, n_cols = llds.shape
    rows = -(-n_frames // FRAMES_PER_HOP)
    padded_len = (rows - 1) * FRAMES_PER_HOP + FRAMES_PER_WINDOW
    padded = np.full((padded_len, n_cols), np.nan)
    padded[:n_frames] = llds
    windows = np.lib.stride_tricks.sliding_window_view(padded, FRAMES_PER_WINDOW, axis=0)[::FRAMES_PER_HOP]
    mean = np.nanmean(windows, axis=2)
    std = np.sqrt(np.nanmean((windows - mean[:, :, None]) ** 2, axis=2))
    out = np.empty((rows, 2 * n_cols))
    out[:, 0::2] = std
    out[:, 1::2] = mean
    return out


def aggregate_windows_loop(llds: np.ndarray, frame_times: np.ndarray) -> pd.DataFrame:
    """The reference aggregation, cell by cell with pandas, kept only as the benchmark baseline."""
    import pandas as pd
    frames = pd.DataFrame(llds, columns=DESCRIPTOR_NAMES)
    frames.insert(0, "frameTime", frame_times)
    out = pd.DataFrame(index=range(-(-len(frames) // FRAMES_PER_HOP)), columns=["frameTime", *FEATURE_NAMES])
    for idx, row in enumerate(range(0, frames.shape[0], FRAMES_PER_HOP)):
        out.loc[idx, "frameTime"] = np.round(frames.loc[row, "frameTime"], decimals=2)
        for key in DESCRIPTOR_NAMES:
            window = frames.loc[row:row + FRAMES_PER_WINDOW - 1, key]
            out.loc[idx, key + "_stddev"] = np.std(window)
            out.loc[idx, key + "_amean"] = np.mean(window)
    return out


def features_from_signal(signal: np.ndarray, rate: int) -> pd.DataFrame:
    import pandas as pd
    starts, llds = extract_llds(signal, rate)
    values = aggregate_windows(llds)
    table = pd.DataFrame(values, columns=FEATURE_NAMES)
    table.insert(0, "frameTime", np.round(starts[::FRAMES_PER_HOP], 2))
    return table


def extract_features(audio_path) -> pd.DataFrame:
    """Decode one audio file and return its window features (`frameTime` + 260 columns)."""
    signal, rate = load_audio(audio_path)
    try:
        return features_from_signal(signal, rate)
    except MERError as err:
        raise MERError(f"{audio_path}: {err}")


# --- feature CSVs -------------------------------------------------------------------------

def write_feature_csv(table: pd.DataFrame, path) -> None:
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise MERError(f"{path}: output must be a .csv file")
    with atomic.atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        table.to_csv(handle, sep=";", index=False)


def _rename_deam(columns) -> dict:
    return {c: c.replace(DEAM_MFCC_PREFIX, "mfcc_sma", 1) for c in columns if c.startswith(DEAM_MFCC_PREFIX)}


def read_feature_csv(path) -> pd.DataFrame:
    """Read a window-feature CSV (this project's layout or DEAM's) as `frameTime` + FEATURE_NAMES."""
    import pandas as pd
    path = Path(path)
    if not path.is_file():
        raise MERError(f"{path}: feature file not found")
    try:
        table = pd.read_csv(path, sep=";")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise MERError(f"{path}: cannot parse as a ';'-separated feature CSV ({err})")
    table.columns = [str(c).strip() for c in table.columns]
    table = table.rename(columns=_rename_deam(table.columns))
    if "frameTime" not in table.columns:
        raise MERError(f"{path}: missing column 'frameTime' (expected a ';'-separated feature CSV)")
    missing = [c for c in FEATURE_NAMES if c not in table.columns]
    if missing:
        raise MERError(f"{path}: missing {len(missing)} of the 260 feature columns, first {missing[0]!r} "
                       f"(expected the IS13 window layout written by extract_features.py)")
    table = table[["frameTime", *FEATURE_NAMES]]
    if len(table) == 0:
        raise MERError(f"{path}: no feature rows")
    try:
        table = table.astype(np.float64)
    except (TypeError, ValueError):
        bad = next(c for c in table.columns if pd.to_numeric(table[c], errors="coerce").isna().any())
        raise MERError(f"{path}: column {bad!r} holds non-numeric values")
    if not np.isfinite(table[FEATURE_NAMES].to_numpy()).all():
        bad = next(c for c in FEATURE_NAMES if not np.isfinite(table[c].to_numpy()).all())
        raise MERError(f"{path}: column {bad!r} holds empty or non-finite values")
    return table


def extract_file(audio_path, out_csv) -> pd.DataFrame:
    out_csv = Path(out_csv)
    if out_csv.suffix.lower() != ".csv":
        raise MERError(f"{out_csv}: output must be a .csv file")
    table = extract_features(audio_path)
    write_feature_csv(table, out_csv)
    return table


# --- folders ------------------------------------------------------------------------------

def find_audio(in_dir) -> list[Path]:
    in_dir = Path(in_dir)
    return sorted(p for p in in_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _extract_one(audio_path: str, out_csv: str):
    try:
        extract_file(audio_path, out_csv)
        return audio_path, None
    except MERError as err:
        return audio_path, str(err)
    except Exception as err:  # report and carry on: one bad file must not stop a folder
        return audio_path, f"{audio_path}: {type(err).__name__}: {err}"


def extract_table(audio_path: str):
    """A cluster worker's task (trompa_mer.extract_dask): the song's feature table, or the
    error message _extract_one would report; the client writes the table."""
    try:
        return extract_features(audio_path), None
    except MERError as err:
        return None, str(err)
    except Exception as err:  # report and carry on: one bad file must not stop a folder
        return None, f"{audio_path}: {type(err).__name__}: {err}"


def feature_csv_complete(path) -> bool:
    """Whether `path` looks like a whole feature CSV as write_feature_csv leaves it: the header
    of this layout, at least one row, every row with all 261 fields, ending with a newline, the
    last row numeric. Cheap (no pandas), so a resumed folder run checks every output it would
    skip; a truncated or garbled file fails it and is extracted again. (A damaged value inside
    an otherwise whole file is caught when the pool is read: pool.load_pool skips it.)"""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    if not data.endswith(b"\n"):
        return False
    lines = data[:-1].split(b"\n")
    header = ["frameTime", *FEATURE_NAMES]
    if len(lines) < 2 or lines[0].rstrip(b"\r").decode("utf-8", "replace").split(";") != header:
        return False
    if any(line.count(b";") != len(FEATURE_NAMES) for line in lines[1:]):
        return False
    try:
        values = [float(v) for v in lines[-1].rstrip(b"\r").split(b";")]
    except ValueError:
        return False
    return bool(np.all(np.isfinite(values[1:])))


def extract_folder(in_dir, out_dir, jobs: int = 1, progress: bool = True, log=sys.stderr,
                   scheduler: str | None = None, connect_timeout: float = 10.0) -> dict:
    """Extract every audio file under `in_dir` into `out_dir/<song_id>.csv`.

    Files already done are skipped (the run resumes); an output that is not a whole feature
    CSV (feature_csv_complete: a run killed mid-write elsewhere, a truncated copy) is extracted
    again. Failures are printed once each to `log` and skipped, and the summary counts what
    happened. A folder without audio files is an error.

    With `scheduler` (a Dask scheduler address) the songs are extracted on that cluster's
    workers instead of `jobs` local processes (trompa_mer.extract_dask); everything else (what
    is skipped, how failures are reported, the files written) is the same.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise MERError(f"{in_dir}: input folder not found")
    files = find_audio(in_dir)
    if not files:
        raise MERError(f"{in_dir}: a folder with no audio files (expected files ending "
                       f"{', '.join(sorted(AUDIO_SUFFIXES))}, searched in its subfolders too)")
    if out_dir.exists() and not out_dir.is_dir():
        raise MERError(f"{out_dir}: exists and is not a folder (folder input writes one CSV per audio file "
                       f"into an output folder)")
    out_dir.mkdir(parents=True, exist_ok=True)
    if scheduler is None:
        return _extract_files(files, out_dir, _run_local(jobs), progress, log)
    from .extract_dask import cluster_runner
    # connects (or fails) before any song is looked at
    with cluster_runner(scheduler, connect_timeout, log, extract_table, write_feature_csv) as run:
        return _extract_files(files, out_dir, run, progress, log)


def _run_local(jobs: int):
    def run(todo):
        from joblib import Parallel, delayed
        return Parallel(n_jobs=jobs, return_as="generator_unordered")(
            delayed(_extract_one)(src, dst) for src, dst in todo)
    return run


def _extract_files(files, out_dir: Path, run, progress: bool, log) -> dict:
    """extract_folder's work: skip the complete outputs, `run(todo)` the rest ([(audio, csv)] ->
    (audio, error or None) as each is written), report and count."""
    from tqdm import tqdm

    todo, skipped, redone, failed, seen = [], 0, 0, [], {}

    def fail(src, error):
        failed.append((src, error))
        tqdm.write(f"failed: {error}", file=log)  # a line of its own, under the progress bar

    for path in files:
        song = song_id_from_path(path)
        if song in seen:
            fail(str(path), f"{path}: song id {song!r} also used by {seen[song]}")
            continue
        seen[song] = path
        target = out_dir / f"{song}.csv"
        if target.exists() and feature_csv_complete(target):
            skipped += 1
            continue
        if target.exists():
            redone += 1
            print(f"note: {target}: not a whole feature CSV, extracting it again", file=log)
        todo.append((str(path), str(target)))
    results = run(todo)
    done = 0
    for src, error in tqdm(results, total=len(todo), desc="extracting features", unit="file",
                           disable=not progress, file=log):
        if error is None:
            done += 1
        else:
            fail(src, error)
    return {"found": len(files), "extracted": done, "skipped": skipped, "redone": redone, "failed": failed}


def extract_input(source, output, jobs: int = 1, progress: bool = True, log=sys.stderr,
                  scheduler: str | None = None, connect_timeout: float = 10.0) -> dict:
    """What extract_features.py -i SOURCE -o OUTPUT does: one audio file into one .csv, or a
    folder of audio files into a folder of CSVs (extract_folder). Returns a summary with
    "mode" ("file" or "folder")."""
    source, output = Path(source), Path(output)
    if not source.exists():
        raise MERError(f"{source}: input not found (expected an audio file or a folder of them)")
    if source.is_dir():
        if output.suffix.lower() == ".csv":
            raise MERError(f"{output}: {source} is a folder, which is extracted into a folder of CSVs (one "
                           f"per audio file); give an output folder, not a .csv file")
        return {"mode": "folder", **extract_folder(source, output, jobs=jobs, progress=progress, log=log,
                                                   scheduler=scheduler, connect_timeout=connect_timeout)}
    if scheduler is not None:
        raise MERError(f"{source}: --scheduler extracts a folder of audio files on a cluster; extract "
                       f"one file locally (without --scheduler)")
    if output.suffix.lower() != ".csv" or output.is_dir():
        raise MERError(f"{output}: output must be a .csv file (for the audio file {source})")
    table = extract_file(source, output)
    return {"mode": "file", "windows": len(table)}
