"""Issue 23 item 9: sizes read from a file are bounded before anything is allocated.

A doctored network width (an encoder's encoder.json, an encoder or CNN member's metadata,
its checksum in committee.json updated to match) built a network of that width: an
"unexpected" allocation failure, or gigabytes allocated before the weights were found not to
fit. A doctored part of a committee kept in the users' shared store was decompressed without
a limit. Now each is one `error:` line naming the file and the field, before the allocation;
the spies below fail the test if a network of the doctored width is really built."""
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from test_loop_support import (TEST_USER, assert_refused, call, call_ok, loop_assets, loop_env,  # noqa: F401
                               snapshot)
from trompa_mer.errors import MERError

SR = 16000


def _spy_real_builds(monkeypatch, cls):
    """Record (width, device type) of every `cls` built; refuse a real (non-meta) one wider
    than 64 so that a test of the old code cannot allocate gigabytes."""
    built = []
    real = cls.__init__

    def init(self, width, *args, **kwargs):
        device = torch.empty(0).device.type
        built.append((width, device))
        if device != "meta" and width > 64:
            raise AssertionError(f"a real {cls.__name__} of width {width} was built from a doctored file")
        return real(self, width, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", init)
    return built


def _rewrite_json(path: Path, **fields):
    data = json.loads(path.read_text())
    for key, value in fields.items():
        target = data
        *parents, last = key.split(".")
        for parent in parents:
            target = target[parent]
        target[last] = value
    path.write_text(json.dumps(data))


def _fix_checksum(committee_dir: Path, name: str):
    """What a doctor who also edits committee.json would do: the checksum follows the file."""
    manifest = json.loads((committee_dir / "committee.json").read_text())
    manifest["checksums"][name] = hashlib.sha256((committee_dir / name).read_bytes()).hexdigest()
    (committee_dir / "committee.json").write_text(json.dumps(manifest))


# --- encoder folder (pretrain_encoder.py --out) ----------------------------------------------
@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    from test_encoder import stream
    from trompa_mer import encoder as E

    out = tmp_path_factory.mktemp("enc") / "enc"
    frames = stream(seconds=8.0)
    E.pretrain("scae", frames, frames[:, :0], out, width=1, epochs=1, seed=3, progress=False, max_batches=1)
    return out


@pytest.mark.parametrize("width", [10**6, 512])
def test_a_doctored_encoder_width_is_refused_before_building(encoder_dir, tmp_path, monkeypatch, width):
    import shutil

    from trompa_mer import encoder as E

    folder = tmp_path / "enc"
    shutil.copytree(encoder_dir, folder)
    _rewrite_json(folder / "encoder.json", width=width)
    built = _spy_real_builds(monkeypatch, E.ConvEncoder)
    with pytest.raises(MERError) as err:
        E.load_encoder(folder)
    message = str(err.value)
    assert "encoder.json" in message and "width" in message, message
    assert "encoder.pt" in message or str(E.MAX_WIDTH) in message, message
    assert not [b for b in built if b[1] != "meta" and b[0] == width]


def test_pretrain_encoder_refuses_a_width_beyond_the_bound(tmp_path):
    from trompa_mer import encoder as E

    assert E.check_width(E.MAX_WIDTH) == E.MAX_WIDTH
    with pytest.raises(MERError, match="width"):
        E.check_width(E.MAX_WIDTH + 1)


def test_a_doctored_encoder_member_width_is_refused_before_building(encoder_dir, tmp_path, monkeypatch):
    from trompa_mer import encoder as E
    from trompa_mer.transfer import EncoderMember

    member = EncoderMember.from_folder(encoder_dir, device="cpu")
    member.save(tmp_path / "encoder_0")
    _rewrite_json(tmp_path / "encoder_0.json", width=512)
    built = _spy_real_builds(monkeypatch, E.ConvEncoder)
    with pytest.raises(MERError) as err:
        EncoderMember.load(tmp_path / "encoder_0", device="cpu")
    message = str(err.value)
    assert "encoder_0.json" in message and "width" in message and "encoder_0.pt" in message, message
    assert not [b for b in built if b[1] != "meta" and b[0] == 512]


# --- a CNN member in the default committee, through predict_emotion.py ------------------------
@pytest.fixture
def cnn_env(loop_env):
    """The loop's default committee with a tiny CNN member added."""
    from trompa_mer.cnn import CNNMember
    from trompa_mer.committee import Committee

    env = loop_env
    folder = env["dir"] / "pretrained"
    committee = Committee.load(folder)
    rng = np.random.default_rng(0)
    songs = ["a", "b", "c", "d"]
    audio = {s: rng.normal(scale=0.3, size=SR * 2).astype(np.float32) for s in songs}
    cnn = CNNMember(n_channels=2, epochs=1, batch_size=4, progress=False, device="cpu")
    cnn.fit_songs(songs, np.arange(4), audio)
    Committee(committee.members + [("cnn_0", cnn)], committee.scaler, committee.feature_names,
              committee.manifest).save(folder)
    return env


@pytest.mark.parametrize("n_channels", [10**6, 64])
def test_a_doctored_cnn_width_is_one_error_line(cnn_env, monkeypatch, n_channels):
    from trompa_mer import cnn

    env = cnn_env
    folder = env["dir"] / "pretrained"
    one = sorted(env["feats"].glob("*.csv"))[0]
    out = env["dir"] / "out.json"
    call_ok(env, "predict_emotion.py", "-i", one, "-o", out)  # the committee loads as saved
    out.unlink()
    _rewrite_json(folder / "cnn_0.json", **{"hyperparameters.n_channels": n_channels})
    _fix_checksum(folder, "cnn_0.json")
    built = []
    real = cnn.ShortChunkCNN.__init__

    def init(self, n=128, *args, **kwargs):
        device = torch.empty(0).device.type
        built.append((n, device))
        if device != "meta" and n > 64:
            raise AssertionError(f"a real CNN of width {n} was built from a doctored file")
        return real(self, n, *args, **kwargs)

    monkeypatch.setattr(cnn.ShortChunkCNN, "__init__", init)
    result = call(env, "predict_emotion.py", "-i", one, "-o", out)
    assert_refused(result, "cnn_0.json", "n_channels")
    assert not out.exists()
    assert not [b for b in built if b[1] != "meta" and b[0] == n_channels]


# --- a doctored part of a user's committee in the shared store --------------------------------
def test_a_part_that_decompresses_beyond_its_bound_is_one_error_line(loop_env):
    env = loop_env
    call_ok(env, "create_user.py", "-i", TEST_USER, "-m", "mc")
    folder = env["users"] / TEST_USER / "committee-0000"
    manifest = json.loads((folder / "committee.json").read_text())
    name = next(n for n in manifest["stored"] if n.endswith(".ubj"))
    blob = manifest["stored"][name]["blob"]
    # a few kilobytes that decompress to 8 MB: a part can hold no more than a bounded multiple
    (folder / f"{name}.part").write_bytes(zlib.compress(b"\0" * (8 << 20), 9))
    manifest["stored"][name] = {"blob": blob, "part": f"{name}.part", "at": 0, "start": 0, "length": 16,
                                "compression": "zlib"}
    (folder / "committee.json").write_text(json.dumps(manifest))
    before = snapshot(env["users"])
    one = sorted(env["feats"].glob("*.csv"))[0]
    result = call(env, "predict_emotion.py", "-i", one, "-o", env["dir"] / "out.json", "-u", TEST_USER)
    line = assert_refused(result, f"{name}.part", "stored", "decompress")
    assert "at most" in line
    assert snapshot(env["users"]) == before
