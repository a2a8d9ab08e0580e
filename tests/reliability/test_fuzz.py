"""Fuzzing (bounded): corrupted real files and bundles give bci_app's own clear errors or load;
they never crash the app with a foreign exception and never hang.

The default run tries a few dozen mutations per format (hypothesis drives the mutation seed, so
a failure shrinks to a reproducible seed); ``bench/fuzz.py`` runs thousands.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.fuzzing import mutate, mutated_copy, run_with_limit, seed_files

FORMATS = ["edf", "bdf", "vhdr", "xdf", "txt", "csv"]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return seed_files(tmp_path_factory.mktemp("seeds"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_readers_survive_corruption(fmt, seeds, tmp_path_factory):
    from acquisition.files import read_file

    files = seeds[fmt]
    outcomes = []

    @settings(max_examples=12, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 10))
    def check(seed, which):
        rng = np.random.default_rng(seed)
        path = mutated_copy(files[which % len(files)], tmp_path_factory.mktemp(fmt), rng)
        out = run_with_limit(lambda: read_file(path), 30)
        outcomes.append(out.kind)
        assert out.kind in ("ok", "app_error"), f"seed {seed}: {out.kind}: {out.detail}"

    logging.disable(logging.CRITICAL)
    try:
        check()
    finally:
        logging.disable(logging.NOTSET)
    assert len(outcomes) >= 12


def test_truncated_files_always_give_app_errors(seeds, tmp_path):
    """Every format cut to 40 % of its length: a DataFileError naming the file, never a crash."""
    from acquisition.files import read_file
    from bci_app.errors import DataFileError

    for fmt in ("edf", "bdf", "xdf"):
        src = seeds[fmt][0]
        dst = tmp_path / src.name
        dst.write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.4)])
        with pytest.raises(DataFileError, match=src.name):
            read_file(dst)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """A deep (EEGNet) and a Riemannian (TS+LR) bundle, trained on random data."""
    from decoders.bundle import save_bundle
    from decoders.estimators import make_decoder
    from decoders.preprocessing import Preprocessor

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((30, 8, 160)) * 1e-5).astype(np.float32)
    y = np.r_[np.zeros(15), np.ones(15)].astype(np.int64)
    out = {}
    for name, kw in (("eegnet", {"max_epochs": 1}), ("ts_lr", {})):
        dec = make_decoder(name, n_chans=8, n_outputs=2, sfreq=80.0, window_s=2.0, **kw).fit(X, y)
        path = tmp_path_factory.mktemp(name) / "bundle"
        save_bundle(dec, path, {"channels": [f"C{i}" for i in range(8)], "classes": ["l", "r"],
                                "preprocessing": Preprocessor().to_dict()})
        out[name] = path
    return out


@pytest.mark.parametrize("kind", ["eegnet", "ts_lr"])
def test_bundle_loader_survives_corruption(kind, bundles, tmp_path_factory):
    from decoders.bundle import load_bundle

    src = bundles[kind]

    @settings(max_examples=20, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1), weights=st.booleans())
    def check(seed, weights):
        rng = np.random.default_rng(seed)
        d = tmp_path_factory.mktemp("b") / "bundle"
        shutil.copytree(src, d)
        victim = d / ("weights.safetensors" if weights else "config.json")
        victim.write_bytes(mutate(victim.read_bytes(), rng, not weights))

        def load_and_predict():
            b = load_bundle(d)
            return b.predict_proba(np.zeros((len(b.channels), b.n_times), np.float32))

        out = run_with_limit(load_and_predict, 30)
        assert out.kind in ("ok", "app_error"), f"seed {seed}: {out.kind}: {out.detail}"

    logging.disable(logging.CRITICAL)
    try:
        check()
    finally:
        logging.disable(logging.NOTSET)
