"""Scoring without scikit-learn (issue 22): an SGD member's weights array beside its skops file,
the scaler as plain arrays, XGBoost imported without scikit-learn; and folders written before
(scaler.skops, no weights array) still load and predict the same."""
import json
import subprocess
import sys

import numpy as np
import pytest

from trompa_mer.committee import MANIFEST, SCALER_FILE, Committee, Standardizer
from trompa_mer.errors import MERError
from trompa_mer.members import SGDMember, skops_dump

from test_loop_support import ROOT

RNG = np.random.default_rng(7)
X = RNG.normal(size=(400, 12)).astype(np.float32)
Y = RNG.integers(0, 4, 400)


def _trained_sgd() -> SGDMember:
    return SGDMember(params={"loss": "log_loss", "alpha": 1e-3, "max_iter": 5, "tol": None}).fit(X, Y)


@pytest.fixture
def saved_sgd(tmp_path):
    member = _trained_sgd()
    files = member.save(tmp_path / "sgd_0")
    return member, tmp_path, files


def test_a_saved_sgd_member_writes_its_weights_and_scores_from_them_alone(saved_sgd):
    member, folder, files = saved_sgd
    assert files == ["sgd_0.skops", "sgd_0.json", "sgd_0.linear.npy"]
    weights = np.load(folder / "sgd_0.linear.npy", allow_pickle=False)
    assert weights.dtype == np.float64 and weights.shape == (4, X.shape[1] + 1)
    assert np.array_equal(weights[:, :-1], member.model.coef_)
    assert np.array_equal(weights[:, -1], member.model.intercept_)
    loaded = SGDMember.load(folder / "sgd_0")
    assert loaded._model is None  # scored without deserializing the scikit-learn model
    np.testing.assert_allclose(loaded.predict_proba(X), member.predict_proba(X), rtol=0, atol=1e-15)
    assert loaded._model is None
    W, b = loaded.linear_form()
    assert np.array_equal(W, member.model.coef_.T) and np.array_equal(b, member.model.intercept_)


def test_the_model_is_deserialized_when_trained_further_and_matches_an_eager_load(saved_sgd):
    _, folder, _ = saved_sgd
    lazy, eager = SGDMember.load(folder / "sgd_0"), SGDMember.load(folder / "sgd_0")
    eager.model  # deserialized now
    assert eager._model is not None and lazy._model is None
    lazy.update(X[:40], Y[:40])
    eager.update(X[:40], Y[:40])
    assert np.array_equal(lazy.model.coef_, eager.model.coef_)
    # after an update the weights are the model's own, not the stale array's
    W, _ = lazy.linear_form()
    assert np.array_equal(W, lazy.model.coef_.T)
    assert not np.array_equal(lazy.model.coef_, np.load(folder / "sgd_0.linear.npy")[:, :-1])


def test_an_unchanged_member_is_saved_with_the_same_bytes_without_deserializing(saved_sgd, tmp_path):
    _, folder, _ = saved_sgd
    loaded = SGDMember.load(folder / "sgd_0")
    (tmp_path / "again").mkdir()
    loaded.save(tmp_path / "again" / "sgd_0")
    assert loaded._model is None
    for name in ("sgd_0.skops", "sgd_0.linear.npy"):
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes(), name


def test_weights_that_disagree_with_the_model_are_refused_when_it_is_read(saved_sgd):
    _, folder, _ = saved_sgd
    weights = np.load(folder / "sgd_0.linear.npy")
    weights[0, 0] += 1.0
    np.save(folder / "sgd_0.linear.npy", weights)
    loaded = SGDMember.load(folder / "sgd_0")
    with pytest.raises(MERError, match=r"sgd_0.skops: the model's weights differ from its \.linear\.npy"):
        loaded.update(X[:4], Y[:4])


@pytest.mark.parametrize("bad, needle", [
    (np.zeros((4, 5)), r"expected float64 weights of shape \(4, 13\)"),
    (np.zeros((4, 13), dtype=np.float32), "expected float64 weights"),
    (np.full((4, 13), np.nan), "weights must be finite"),
])
def test_a_malformed_weights_array_is_refused_naming_it(saved_sgd, bad, needle):
    _, folder, _ = saved_sgd
    np.save(folder / "sgd_0.linear.npy", bad)
    with pytest.raises(MERError, match=f"sgd_0.linear.npy: {needle}"):
        SGDMember.load(folder / "sgd_0")


def test_an_unreadable_weights_array_is_refused_naming_it(saved_sgd):
    _, folder, _ = saved_sgd
    (folder / "sgd_0.linear.npy").write_bytes(b"not an array")
    with pytest.raises(MERError, match="sgd_0.linear.npy: not a readable weights array"):
        SGDMember.load(folder / "sgd_0")


def test_a_damaged_model_file_is_refused_naming_it_when_it_is_read(saved_sgd):
    _, folder, _ = saved_sgd
    (folder / "sgd_0.skops").write_bytes(b"not a zip archive")
    loaded = SGDMember.load(folder / "sgd_0")  # scores from the weights; the model is read later
    with pytest.raises(MERError, match=r"sgd_0.skops: not a readable skops file \(BadZipFile: "):
        loaded.update(X[:4], Y[:4])
    (folder / "sgd_0.skops").unlink()
    (folder / "sgd_0.skops").mkdir()
    with pytest.raises(MERError, match=r"sgd_0.skops: not a readable skops file \(IsADirectoryError: "):
        SGDMember.load(folder / "sgd_0")  # with its weights array
    (folder / "sgd_0.linear.npy").unlink()
    with pytest.raises(MERError, match=r"sgd_0.skops: not a readable skops file \(IsADirectoryError: "):
        SGDMember.load(folder / "sgd_0")  # without: read at once
    (folder / "sgd_0.skops").rmdir()
    (folder / "sgd_0.skops").write_bytes(b"not a zip archive")
    with pytest.raises(MERError, match=r"sgd_0.skops: not a readable skops file \(BadZipFile: "):
        SGDMember.load(folder / "sgd_0")


def test_a_member_saved_before_the_weights_array_loads_its_model_at_once(saved_sgd):
    member, folder, _ = saved_sgd
    (folder / "sgd_0.linear.npy").unlink()
    loaded = SGDMember.load(folder / "sgd_0")
    assert loaded._model is not None
    np.testing.assert_array_equal(loaded.predict_proba(X), member.predict_proba(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.float16])
def test_standardizer_transform_is_standard_scalers_bit_for_bit(dtype):
    from sklearn.preprocessing import StandardScaler

    raw = (RNG.normal(size=(300, 9)) * 50).astype(dtype)
    reference = StandardScaler().fit(raw.astype(np.float64))
    mine = Standardizer(reference.mean_, reference.scale_)
    ours, theirs = mine.transform(raw), reference.transform(raw)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_the_scaler_array_round_trips_with_the_same_bytes(tmp_path):
    scaler = Standardizer(RNG.normal(size=9), RNG.uniform(0.5, 2, size=9))
    scaler.save(tmp_path / "a.npy")
    again = Standardizer.load(tmp_path / "a.npy")
    again.save(tmp_path / "b.npy")
    assert (tmp_path / "a.npy").read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert np.array_equal(again.mean_, scaler.mean_) and np.array_equal(again.scale_, scaler.scale_)
    np.save(tmp_path / "c.npy", np.zeros((3, 9)))
    with pytest.raises(MERError, match=r"c.npy: not a readable scaler \(expected a 2 x features array"):
        Standardizer.load(tmp_path / "c.npy")


def test_the_crowd_layouts_npz_scaler_round_trips_as_float64(tmp_path):
    mean, scale = RNG.normal(size=9).astype(np.float32), RNG.uniform(0.5, 2, size=9).astype(np.float32)
    scaler = Standardizer(mean, scale)
    assert scaler.mean_.dtype == np.float64 and scaler.scale_.dtype == np.float64 and scaler.n_features_in_ == 9
    scaler.save(tmp_path / "audio_scaler.npz")
    with np.load(tmp_path / "audio_scaler.npz") as data:
        assert sorted(data.files) == ["mean", "scale"]
    again = Standardizer.load(tmp_path / "audio_scaler.npz")
    assert np.array_equal(again.mean_, mean.astype(np.float64)) and np.array_equal(again.scale_, scale.astype(np.float64))
    from trompa_mer.committee import _load_scaler, _save_scaler

    _save_scaler(again, tmp_path / "b.npz")
    assert isinstance(_load_scaler(tmp_path / "b.npz"), Standardizer)
    assert np.array_equal(_load_scaler(tmp_path / "b.npz").scale_, again.scale_)


@pytest.mark.parametrize("name", ["scaler.npy", "audio_scaler.npz"])
def test_a_scaler_file_holding_python_objects_is_refused_unread(tmp_path, name):
    objects = np.empty((2, 3), dtype=object)
    objects[:] = 1.0
    if name.endswith(".npy"):
        np.save(tmp_path / name, objects, allow_pickle=True)
    else:
        np.savez(tmp_path / name, mean=objects[0], scale=objects[1])
    with pytest.raises(MERError, match=f"{name}: not a readable scaler"):
        Standardizer.load(tmp_path / name)


def _committee(folder):
    from trompa_mer.examples import train_committee

    y = RNG.integers(0, 4, 300)
    raw = RNG.normal(size=(300, 260)).astype(np.float32) + y[:, None].astype(np.float32)
    train_committee(raw, y, folder, algorithms=("sgd", "xgb"), per_algorithm=2, xgb_rounds=5)
    return raw


def _as_written_before(folder):
    """Rewrite a saved committee folder as the code before wrote it: a scikit-learn scaler in
    scaler.skops and SGD members without their weights array."""
    import hashlib

    from sklearn.preprocessing import StandardScaler

    manifest = json.loads((folder / MANIFEST).read_text())
    stats = Standardizer.load(folder / manifest["scaler"])
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = stats.mean_, stats.scale_, stats.scale_ ** 2
    scaler.n_features_in_, scaler.n_samples_seen_ = len(stats.mean_), 300
    (folder / manifest["scaler"]).unlink()
    del manifest["checksums"][manifest["scaler"]]
    skops_dump(scaler, folder / "scaler.skops")
    manifest["scaler"] = "scaler.skops"
    manifest["checksums"]["scaler.skops"] = hashlib.sha256((folder / "scaler.skops").read_bytes()).hexdigest()
    for entry in manifest["members"]:
        for name in [f for f in entry["files"] if f.endswith(".linear.npy")]:
            entry["files"].remove(name)
            del manifest["checksums"][name]
            (folder / name).unlink()
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def test_a_committee_written_before_loads_and_predicts_as_the_same_committee_written_now(tmp_path):
    raw = _committee(tmp_path / "now")
    import shutil

    shutil.copytree(tmp_path / "now", tmp_path / "before")
    _as_written_before(tmp_path / "before")
    now, before = Committee.load(tmp_path / "now"), Committee.load(tmp_path / "before")
    assert (tmp_path / "now" / SCALER_FILE).exists() and SCALER_FILE == "scaler.npy"
    assert type(before.scaler).__name__ == "StandardScaler" and isinstance(now.scaler, Standardizer)
    np.testing.assert_array_equal(now.window_proba(raw), before.window_proba(raw))
    # saved again (as a retrain saves a listener's committee), it takes the current format
    before.save(tmp_path / "resaved")
    manifest = json.loads((tmp_path / "resaved" / MANIFEST).read_text())
    assert manifest["scaler"] == "scaler.npy"
    assert all(f"{e['name']}.linear.npy" in e["files"] for e in manifest["members"] if e["algorithm"] == "sgd")
    np.testing.assert_array_equal(Committee.load(tmp_path / "resaved").window_proba(raw), now.window_proba(raw))


def _fresh(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_xgboost_is_imported_without_scikit_learn_which_stays_importable():
    seen = _fresh(
        "import json, sys, numpy as np\n"
        "from trompa_mer.members import import_xgboost\n"
        "xgb = import_xgboost()\n"
        "before = 'sklearn' in sys.modules\n"
        "b = xgb.train({'objective': 'multi:softprob', 'num_class': 4}, xgb.DMatrix(np.eye(8), label=np.arange(8) % 4), 2)\n"
        "import sklearn.linear_model\n"
        "print(json.dumps({'before': before, 'after': 'sklearn' in sys.modules, 'same': import_xgboost() is xgb,\n"
        "                  'rows': int(b.inplace_predict(np.eye(8).astype('float32')).shape[0])}))")
    assert seen == {"before": False, "after": True, "same": True, "rows": 8}


def test_xgboost_after_scikit_learn_keeps_its_scikit_learn_wrappers():
    seen = _fresh("import json, sklearn.base\nfrom trompa_mer.members import import_xgboost\n"
                  "xgb = import_xgboost()\n"
                  "print(json.dumps(issubclass(xgb.XGBClassifier, sklearn.base.BaseEstimator)))")
    assert seen is True


def test_scikit_learn_for_a_retrain_is_imported_without_pandas_which_stays_importable():
    seen = _fresh(
        "import json, sys, numpy as np\n"
        "from trompa_mer.members import skops_io\n"
        "skops_io()\n"
        "import sklearn.utils.fixes\n"
        "before = sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules)\n"
        "import pandas as pd\n"
        "from sklearn.linear_model import SGDClassifier\n"
        "frame = pd.DataFrame({'a': [0.0, 1.0, 2.0, 3.0], 'b': [1.0, 0.0, 1.0, 0.0]})\n"
        "model = SGDClassifier(random_state=0).fit(frame, [0, 1, 0, 1])\n"
        "print(json.dumps({'before': before, 'pd': sklearn.utils.fixes.pd is None,\n"
        "                  'names': list(model.feature_names_in_), 'skops': 'skops.io' in sys.modules}))")
    # scikit-learn saw no pandas on import, yet a DataFrame handed to it later is a DataFrame
    assert seen == {"before": [], "pd": True, "names": ["a", "b"], "skops": True}


def test_pandas_loaded_first_is_left_alone_by_the_scikit_learn_import():
    seen = _fresh("import json, pandas\nfrom trompa_mer.members import import_sklearn\n"
                  "import_sklearn()\nimport sklearn.utils.fixes\n"
                  "print(json.dumps(sklearn.utils.fixes.pd is pandas))")
    assert seen is True


def test_an_sgd_member_built_in_a_fresh_process_imports_no_pandas():
    seen = _fresh("import json, sys, numpy as np\nfrom trompa_mer.members import SGDMember\n"
                  "m = SGDMember(seed=0)\nm._new_model()\n"
                  "print(json.dumps(['sklearn.linear_model' in sys.modules, 'pandas' in sys.modules]))")
    assert seen == [True, False]


def test_hidden_modules_refuses_their_import_inside_and_gives_them_back(tmp_path, monkeypatch):
    from trompa_mer.members import hidden_modules

    (tmp_path / "mer_probe_a.py").write_text("VALUE = 1\n")
    (tmp_path / "mer_probe_b.py").write_text("VALUE = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import mer_probe_b  # already imported: left alone

    try:
        with hidden_modules("mer_probe_a", "mer_probe_b") as hidden:
            assert hidden == ["mer_probe_a"]
            with pytest.raises(ImportError):
                import mer_probe_a  # noqa: F401
            import mer_probe_b as again
            assert again is mer_probe_b
        assert "mer_probe_a" not in sys.modules and sys.modules["mer_probe_b"] is mer_probe_b
        import mer_probe_a

        assert mer_probe_a.VALUE == 1
        # a module imported for real inside (another way than `import`) is kept on exit
        with hidden_modules("mer_probe_c") as hidden:
            sys.modules["mer_probe_c"] = mer_probe_a
        assert hidden == ["mer_probe_c"] and sys.modules["mer_probe_c"] is mer_probe_a
        # and a failure inside gives the names back as well
        with pytest.raises(RuntimeError):
            with hidden_modules("mer_probe_d"):
                raise RuntimeError("inside")
        assert "mer_probe_d" not in sys.modules
    finally:
        for name in ("mer_probe_a", "mer_probe_b", "mer_probe_c", "mer_probe_d"):
            sys.modules.pop(name, None)


class _Payload:
    def __init__(self):
        self.value = 1


class _Other:
    def __init__(self):
        self.value = 2


def test_every_untrusted_type_in_a_model_file_is_named(tmp_path):
    from trompa_mer.members import skops_load

    skops_dump([_Payload(), _Other()], tmp_path / "two.skops")
    with pytest.raises(MERError, match="two.skops: contains types that are not trusted: ") as refused:
        skops_load(tmp_path / "two.skops")
    named = str(refused.value).split("not trusted: ", 1)[1].split(", ")
    assert sorted(n.rsplit(".", 1)[-1] for n in named) == ["_Other", "_Payload"], named
