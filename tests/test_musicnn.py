"""The musicnn front end: the torch port against the original TensorFlow model's outputs,
the log-mel input against librosa, and the patching."""
import numpy as np
import pytest

from trompa_mer import musicnn
from trompa_mer.errors import MERError

REFERENCE = "tests/golden/musicnn_reference.npz"


def test_port_reproduces_the_original_tensorflow_outputs():
    # Recorded by tools/convert_musicnn.py from the release's own graph and checkpoint.
    import torch

    ref = np.load(REFERENCE)
    with np.load(musicnn.WEIGHTS, allow_pickle=False) as archive:
        weights = {name: archive[name] for name in archive.files}
    # built here, not through the process-wide cached network(), so every build is checked
    with torch.no_grad():
        out = musicnn.build_network(weights)(torch.from_numpy(ref["input"]))
    for name in ("tags", "penultimate", "max_pool", "mean_pool"):
        scale = np.abs(ref[name]).max()
        assert out[name].shape == ref[name].shape
        np.testing.assert_allclose(out[name].numpy(), ref[name], atol=1e-5 * max(scale, 1), rtol=0,
                                   err_msg=name)


def test_reference_is_not_degenerate():
    # The comparison above means something only if the outputs vary across patches and units.
    ref = np.load(REFERENCE)
    assert ref["tags"].shape == (3, 50) and ref["penultimate"].shape == (3, 200)
    assert np.std(ref["tags"], axis=0).max() > 1e-3
    assert np.std(ref["penultimate"]) > 0.1


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    samples = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    expected = librosa.feature.melspectrogram(y=samples, sr=16000, hop_length=256, n_fft=512,
                                              n_mels=96).T
    expected = np.log10(10000 * expected.astype(np.float16).astype(np.float32) + 1)
    got = musicnn.log_mel(samples)
    assert got.shape == expected.shape == (126, 96)
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_patches_are_consecutive_three_second_blocks():
    mel = np.arange(400 * 96, dtype=np.float32).reshape(400, 96)
    out = musicnn.patches(mel)
    assert out.shape == (2, 187, 96)
    np.testing.assert_array_equal(out[1, 0], mel[187])
    short = musicnn.patches(mel[:100])  # shorter than a patch: repeated to fill one
    assert short.shape == (1, 187, 96)
    np.testing.assert_array_equal(short[0, 100], mel[0])
    shorter = musicnn.patches(mel[:50])  # repeated four times to reach one patch
    assert shorter.shape == (1, 187, 96)
    np.testing.assert_array_equal(shorter[0, 150], mel[0])


def test_patch_outputs_of_a_clip():
    t = np.arange(16000 * 7) / 16000
    out = musicnn.patch_outputs((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    assert out["tags"].shape == (2, 50) and out["penultimate"].shape == (2, 200)
    assert ((out["tags"] > 0) & (out["tags"] < 1)).all()


def test_refusals(tmp_path):
    with pytest.raises(MERError, match="non-empty 1-D"):
        musicnn.log_mel(np.zeros((0,), dtype=np.float32))
    bad = tmp_path / "w.npz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(MERError, match="cannot read the musicnn weights"):
        musicnn.network.__wrapped__(str(bad))
