import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import ROOT, shared_path
from trompa_mer import features as F
from trompa_mer.errors import MERError

RATE = 16000


def _write(path, signal, rate=RATE, subtype=None):
    sf.write(str(path), signal, rate, subtype=subtype)
    return path


def _sine(seconds=3.0, freq=220.0, rate=RATE, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_feature_names_follow_installed_opensmile():
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.IS13,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    deltas = opensmile.Smile(feature_set=opensmile.FeatureSet.IS13,
                             feature_level=opensmile.FeatureLevel.LowLevelDescriptors_Deltas)
    assert F.DESCRIPTOR_NAMES == list(smile.feature_names) + list(deltas.feature_names)
    assert len(F.FEATURE_NAMES) == 260
    assert F.FEATURE_NAMES[0] == "F0final_sma_stddev" and F.FEATURE_NAMES[-1] == "mfcc_sma_de[14]_amean"


def test_one_pass_config_equals_stock_lld_and_delta_levels():
    import opensmile

    signal = _sine(2.0) + 0.05 * np.random.default_rng(0).standard_normal(32000).astype(np.float32)
    _, ours = F.extract_llds(signal, RATE)
    lld = opensmile.Smile(feature_set=opensmile.FeatureSet.IS13, feature_level="lld").process_signal(signal, RATE)
    de = opensmile.Smile(feature_set=opensmile.FeatureSet.IS13, feature_level="lld_de").process_signal(signal, RATE)
    n = len(ours)
    np.testing.assert_array_equal(ours[:, :65], lld.to_numpy()[:n])
    np.testing.assert_array_equal(ours[:, 65:], de.to_numpy()[:n])


def test_aggregation_matches_reference_loop():
    rng = np.random.default_rng(1)
    for n_frames in (1, 49, 50, 51, 100, 101, 237):
        llds = rng.normal(size=(n_frames, 130)) * rng.uniform(0.1, 100, size=130)
        times = np.arange(n_frames) * 0.01
        ours = F.aggregate_windows(llds)
        ref = F.aggregate_windows_loop(llds, times)
        assert ours.shape == (int(np.ceil(n_frames / 50)), 260)
        np.testing.assert_allclose(ours, ref[F.FEATURE_NAMES].to_numpy(float), rtol=1e-10, atol=1e-12)


def test_window_layout_by_hand():
    llds = np.tile(np.arange(120, dtype=float)[:, None], (1, 130))
    out = F.aggregate_windows(llds)
    assert out.shape == (3, 260)
    # row 0: frames 0..100, row 1: frames 50..119 (shorter at the end), row 2: frames 100..119
    np.testing.assert_allclose(out[:, 1], [50.0, 84.5, 109.5])
    np.testing.assert_allclose(out[0, 0], np.std(np.arange(101)))


def test_constant_signal(tmp_path):
    path = _write(tmp_path / "const.wav", np.full(RATE * 2, 0.25, dtype=np.float32))
    table = F.extract_features(path)
    assert list(table.columns) == ["frameTime", *F.FEATURE_NAMES]
    assert np.isfinite(table[F.FEATURE_NAMES].to_numpy()).all()
    assert len(table) == int(np.ceil(len(F.extract_llds(*F.load_audio(path))[1]) / 50))


def test_sine_layout_and_frame_times(tmp_path):
    path = _write(tmp_path / "sine.flac", _sine(5.0))
    table = F.extract_features(path)
    starts, llds = F.extract_llds(*F.load_audio(path))
    assert len(table) == int(np.ceil(len(llds) / 50))
    np.testing.assert_allclose(table["frameTime"], np.round(starts[::50], 2))
    np.testing.assert_allclose(table["frameTime"][:4], [0.0, 0.5, 1.0, 1.5])
    # a steady 220 Hz tone: mean pitch close to 220 Hz in the voiced middle windows
    assert 200 < table["F0final_sma_amean"].iloc[3] < 240


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = _sine(2.0, 220), _sine(2.0, 330, amp=0.3)
    stereo = _write(tmp_path / "stereo.wav", np.stack([left, right], axis=1))
    mono = _write(tmp_path / "mono.wav", (left + right) / 2)
    a, ra = F.load_audio(stereo)
    b, rb = F.load_audio(mono)
    assert ra == rb == RATE and a.ndim == 1
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_eight_bit_wav_decodes_to_the_same_features(tmp_path):
    signal = _sine(2.0, 440, amp=0.6)
    eight = _write(tmp_path / "u8.wav", signal, subtype="PCM_U8")
    decoded, _ = F.load_audio(eight)
    np.testing.assert_allclose(decoded, signal, atol=2 / 256)  # 8-bit quantisation only
    float_table = F.features_from_signal(signal, RATE)
    u8_table = F.extract_features(eight)
    assert abs(u8_table["F0final_sma_amean"].iloc[1] - float_table["F0final_sma_amean"].iloc[1]) < 5
    assert abs(u8_table["pcm_RMSenergy_sma_amean"].iloc[1] / float_table["pcm_RMSenergy_sma_amean"].iloc[1] - 1) < 0.05


def test_native_rate_is_kept(tmp_path):
    path = _write(tmp_path / "r.wav", _sine(1.0, rate=22050), rate=22050)
    _, rate = F.load_audio(path)
    assert rate == 22050
    starts, _ = F.extract_llds(*F.load_audio(path))
    np.testing.assert_allclose(np.diff(starts[:3]), 221 / 22050)  # 10 ms frames at the file's rate


def test_feature_csv_round_trip_and_deam_names(tmp_path):
    table = F.features_from_signal(_sine(2.0), RATE)
    out = tmp_path / "song.csv"
    F.write_feature_csv(table, out)
    text = out.read_text().splitlines()
    assert text[0].split(";")[:2] == ["frameTime", "F0final_sma_stddev"]
    back = F.read_feature_csv(out)
    np.testing.assert_allclose(back.to_numpy(), table.to_numpy())
    deam = table.rename(columns={c: c.replace("mfcc_sma", "pcm_fftMag_mfcc_sma") for c in table.columns})
    deam.to_csv(tmp_path / "deam.csv", sep=";", index=False)
    np.testing.assert_allclose(F.read_feature_csv(tmp_path / "deam.csv").to_numpy(), table.to_numpy())


def test_read_feature_csv_refusals(tmp_path):
    table = F.features_from_signal(_sine(2.0), RATE)
    bad = tmp_path / "bad.csv"
    table.drop(columns=["logHNR_sma_amean"]).to_csv(bad, sep=";", index=False)
    with pytest.raises(MERError, match="logHNR_sma_amean"):
        F.read_feature_csv(bad)
    table.to_csv(bad, sep=",", index=False)
    with pytest.raises(MERError, match="frameTime"):
        F.read_feature_csv(bad)


def _run(*args, **kw):
    return subprocess.run([sys.executable, str(ROOT / "extract_features.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, **kw)


def test_cli_single_file_and_refusals(tmp_path):
    wav = _write(tmp_path / "Song.wav", _sine(2.0))
    out = tmp_path / "song.csv"
    ok = _run("-i", wav, "-o", out)
    assert ok.returncode == 0, ok.stderr
    assert len(F.read_feature_csv(out)) == 4
    cases = [
        (("-i", tmp_path / "missing.wav", "-o", tmp_path / "x.csv"), "not found"),
        (("-i", wav, "-o", tmp_path / "x.txt"), ".csv"),
        (("-i", _write(tmp_path / "tiny.wav", np.zeros(10, np.float32)), "-o", tmp_path / "t.csv"), "shorter than one 10 ms frame"),
    ]
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"ID3" + os.urandom(2000))
    cases.append((("-i", corrupt, "-o", tmp_path / "c.csv"), "cannot decode"))
    text = tmp_path / "notes.ogg"
    text.write_text("not audio at all")
    cases.append((("-i", text, "-o", tmp_path / "n.csv"), "cannot decode"))
    for args, needle in cases:
        res = _run(*args)
        assert res.returncode != 0, args
        assert needle in res.stderr and res.stderr.count("\n") == 1, res.stderr
        assert not args[-1].exists() and not list(tmp_path.glob(".*.tmp*"))


def test_cli_folder_mode_resumes_and_reports_failures(tmp_path):
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    _write(audio / "A.wav", _sine(1.5, 200))
    _write(audio / "sub" / "b.flac", _sine(1.5, 300))
    (audio / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    out = tmp_path / "feats"
    first = _run("-i", audio, "-o", out, "--jobs", "2", "--consolidate")
    assert first.returncode == 1
    assert "broken.wav" in first.stderr and "2 extracted" in first.stdout and "1 failed" in first.stdout
    assert sorted(p.name for p in out.glob("*.csv")) == ["a.csv", "b.csv"]
    assert (out / ".pool_shards" / "manifest.json").exists() and list((out / ".pool_shards").glob("shard-*.npy"))
    (audio / "broken.wav").unlink()
    mtime = (out / "a.csv").stat().st_mtime_ns
    second = _run("-i", audio, "-o", out)
    assert second.returncode == 0 and "2 already done" in second.stdout
    assert (out / "a.csv").stat().st_mtime_ns == mtime


def test_help_explains_every_flag():
    res = _run("--help")
    assert res.returncode == 0
    for flag in ("--input", "--output", "--jobs", "--consolidate", "--quiet"):
        assert flag in res.stdout


def test_real_emotify_clips():
    audio = shared_path("emotify", "audio")
    for name in ("1.mp3", "250.mp3"):
        table = F.extract_features(audio / name)
        # 30 s clips at 22.05 kHz: 10.0227 ms frames, 60 windows, finite values everywhere
        assert len(table) == 60
        assert table["frameTime"].iloc[1] == 0.5
        values = table[F.FEATURE_NAMES].to_numpy()
        assert np.isfinite(values).all()
        assert (table.filter(like="_stddev").to_numpy() >= 0).all()
        assert table["pcm_RMSenergy_sma_amean"].mean() > 0.001  # real music, not silence


def test_resumed_folder_extraction_redoes_incomplete_csvs(tmp_path, monkeypatch):
    """Issue 13: an output CSV that is not whole (truncated, garbled, empty) is extracted again
    on a resumed run, not counted as done; whole ones are skipped; each failure printed once."""
    import io

    import pandas as pd

    from trompa_mer import features as F

    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("a", "b", "c", "d", "e"):
        (audio / f"{name}.wav").write_bytes(b"")
    (audio / "sub").mkdir()
    (audio / "sub" / "A.wav").write_bytes(b"")  # the same song id as a.wav: one failure line
    table = pd.DataFrame(np.ones((3, len(F.FEATURE_NAMES))), columns=F.FEATURE_NAMES)
    table.insert(0, "frameTime", [0.0, 0.5, 1.0])
    extracted = []

    def fake_extract(src, dst):
        extracted.append(Path(src).stem)
        if Path(src).stem == "e":
            raise F.MERError(f"{src}: cannot decode")
        F.write_feature_csv(table, dst)
        return table

    monkeypatch.setattr(F, "extract_file", fake_extract)
    out = tmp_path / "feats"
    out.mkdir()
    F.write_feature_csv(table, out / "a.csv")                            # whole: skipped
    whole = (out / "a.csv").read_text()
    (out / "b.csv").write_text(whole[: len(whole) // 2])                 # truncated mid-row
    (out / "c.csv").write_text("garbage\n")                              # not a feature CSV
    (out / "d.csv").write_text("")                                      # empty
    log = io.StringIO()
    summary = F.extract_folder(audio, out, progress=False, log=log)
    assert sorted(extracted) == ["b", "c", "d", "e"]
    assert (summary["skipped"], summary["redone"], summary["extracted"]) == (1, 3, 3)
    assert len(summary["failed"]) == 2
    failures = [line for line in log.getvalue().splitlines() if line.startswith("failed:")]
    assert len(failures) == 2 and any("also used by" in f for f in failures)
    for name in "abcd":
        assert F.feature_csv_complete(out / f"{name}.csv")
    assert not F.feature_csv_complete(tmp_path / "nowhere.csv")
