"""Training options of DeepDecoder: augmentation, head-only fine-tuning, EEGNet max-norm."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bci_app.errors import ConfigError
from decoders.estimators import _apply_augment, make_decoder

from .conftest import TOY_CHANS, TOY_SFREQ, TOY_WINDOW

N_CHANS, SFREQ, WINDOW = TOY_CHANS, TOY_SFREQ, TOY_WINDOW  # the conftest's toy data


def _batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, N_CHANS, 128, generator=g)
    y = torch.arange(n) % 2
    return x, y


@pytest.mark.parametrize("which", [("flip",), ("reverse",), ("flip", "reverse")])
def test_flip_and_reverse_keep_each_trials_covariance(which):
    x, y = _batch()
    out = _apply_augment(x, y, which, torch.Generator().manual_seed(3))
    cov = torch.einsum("nct,ndt->ncd", x, x)
    cov_out = torch.einsum("nct,ndt->ncd", out, out)
    torch.testing.assert_close(cov_out, cov, rtol=1e-4, atol=1e-3)
    assert not torch.equal(out, x)  # something was changed


def test_segment_recombination_takes_segments_from_same_class_trials():
    x, y = _batch(20)
    out = _apply_augment(x, y, ("sr",), torch.Generator().manual_seed(5))
    bounds = np.linspace(0, x.shape[2], 9).astype(int)
    moved = 0
    for i in range(len(y)):
        for j in range(8):
            seg = out[i, :, bounds[j]:bounds[j + 1]]
            src = [k for k in range(len(y))
                   if torch.equal(seg, x[k, :, bounds[j]:bounds[j + 1]])]
            assert len(src) == 1 and int(y[src[0]]) == int(y[i])
            moved += src[0] != i
    assert moved > 0.5 * 20 * 8  # most segments come from another trial


def test_noise_and_scale_change_amplitude_only_mildly():
    x, y = _batch()
    out = _apply_augment(x, y, ("noise", "scale"), torch.Generator().manual_seed(0))
    ratio = float(out.std() / x.std())
    assert 0.75 < ratio < 1.3 and not torch.equal(out, x)


def test_unknown_augmentation_is_config_error():
    with pytest.raises(ConfigError, match="augment"):
        make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, augment="flip,mixup")


def test_augmented_training_is_seeded_and_differs_from_plain(toy):
    X, y = toy
    kw = dict(max_epochs=3, batch_size=8, val_fraction=0)
    a = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, augment="flip,reverse,sr", **kw)
    b = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, augment="flip,reverse,sr", **kw)
    c = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, **kw)
    pa, pb, pc = (d.fit(X, y).predict_proba(X) for d in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.allclose(pa, pc)
    assert a.get_params()["augment"] == "flip,reverse,sr"


@pytest.mark.parametrize("name", ["eegnet", "shallowconvnet", "eeg_conformer"])
def test_head_finetuning_changes_only_the_output_layer(name, toy):
    X, y = toy
    dec = make_decoder(name, N_CHANS, 2, SFREQ, WINDOW, max_epochs=2, batch_size=8,
                       finetune_layers="head", finetune_epochs=3, finetune_lr=1e-2)
    dec.fit(X, y)
    before = {k: v.clone() for k, v in dec.net_.state_dict().items()}
    dec.partial_fit(X[:8], y[:8])
    head = dec._head()
    head_names = {n for n, p in dec.net_.named_parameters()
                  if any(p is q for q in head.parameters())}
    changed = {k for k, v in dec.net_.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= head_names


def test_finetune_layers_is_checked():
    with pytest.raises(ConfigError, match="finetune_layers"):
        make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, finetune_layers="last2")


def test_eegnet_max_norm_constrains_weights(toy):
    X, y = toy
    dec = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, max_epochs=5, batch_size=8, lr=0.05,
                       model_params={"max_norm": True}).fit(X, y)
    spatial = dec.net_.block1[2].weight.detach().flatten(1).norm(dim=1)
    head = dec.net_.classifier.weight.detach().norm(dim=1)
    assert float(spatial.max()) <= 1.0 + 1e-5 and float(head.max()) <= 0.25 + 1e-5
    free = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, max_epochs=5, batch_size=8,
                        lr=0.05).fit(X, y)
    # without the constraint, a high learning rate leaves some norm above the bound
    assert float(free.net_.classifier.weight.detach().norm(dim=1).max()) > 0.25


def test_unknown_model_param_is_config_error():
    with pytest.raises(ConfigError, match="max_norm"):
        make_decoder("shallowconvnet", N_CHANS, 2, SFREQ, WINDOW,
                     model_params={"max_norm": True})


# --- seed ensembles ------------------------------------------------------------------------
_ENS_KW = dict(max_epochs=3, batch_size=8, val_fraction=0, seed=4)


def _member_proba(net, x):
    with torch.inference_mode():
        return torch.softmax(net(x), dim=1).numpy()


def test_ensemble_averages_the_probabilities_of_members_trained_from_different_seeds(toy):
    X, y = toy
    ens = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, n_ensemble=3, **_ENS_KW).fit(X, y)
    single = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, **_ENS_KW).fit(X, y)
    xt = ens._tensor(X)
    members = [_member_proba(m, xt) for m in ens.net_.members]
    # the prediction is exactly the mean of the members' class probabilities
    np.testing.assert_allclose(ens.predict_proba(X), np.mean(members, axis=0), atol=1e-6)
    # member 0 is the single model with the same seed; the others start from other seeds
    np.testing.assert_allclose(members[0], single.predict_proba(X), atol=1e-6)
    assert not np.allclose(members[1], members[0]) and not np.allclose(members[2], members[1])
    assert ens.get_params()["n_ensemble"] == 3 and len(ens.best_epochs_) == 3


def test_ensemble_bundle_round_trip_and_onnx_export(toy, tmp_path):
    from decoders.bundle import load_bundle, save_bundle
    from decoders.export import export_onnx, onnx_predict_proba, onnx_session

    X, y = toy
    ens = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, n_ensemble=2, **_ENS_KW).fit(X, y)
    p = ens.predict_proba(X)
    save_bundle(ens, tmp_path / "b", dict(channels=[f"E{i}" for i in range(N_CHANS)],
                                          classes=["left", "right"], preprocessing={}))
    np.testing.assert_array_equal(load_bundle(tmp_path / "b").predict_proba(X), p)
    export_onnx(ens, tmp_path / "m.onnx")
    np.testing.assert_allclose(onnx_predict_proba(onnx_session(tmp_path / "m.onnx"), X[:3]),
                               p[:3], atol=1e-5)


def test_ensemble_finetuning_adapts_every_member(toy):
    X, y = toy
    ens = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, n_ensemble=2, finetune_epochs=2,
                       finetune_lr=1e-2, **_ENS_KW).fit(X, y)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in ens.net_.members]
    ens.partial_fit(X[:8], y[:8])
    for m, b in zip(ens.net_.members, before):
        assert any(not torch.equal(v, b[k]) for k, v in m.state_dict().items())


def test_ensemble_size_is_checked():
    with pytest.raises(ConfigError, match="n_ensemble"):
        make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, n_ensemble=0)


# --- random cropping ------------------------------------------------------------------------
def test_random_crop_takes_contiguous_windows_at_random_offsets():
    from decoders.estimators import _random_crop

    n, span, win = 400, 100, 64
    x = torch.arange(span, dtype=torch.float32).repeat(n, 3, 1)  # value = time index
    out = _random_crop(x, win, torch.Generator().manual_seed(0))
    assert out.shape == (n, 3, win)
    offs = out[:, 0, 0]
    expected = offs[:, None, None] + torch.arange(win).float().expand(n, 3, win)
    torch.testing.assert_close(out, expected)
    assert int(offs.min()) == 0 and int(offs.max()) == span - win  # both ends reachable
    assert len(torch.unique(offs)) > 30


def test_crop_training_accepts_longer_trials_and_validates_on_the_first_window(toy):
    X, y = toy
    n_times = X.shape[2]
    rng = np.random.default_rng(1)
    X_span = np.concatenate([X, rng.standard_normal((len(X), N_CHANS, 64)).astype(np.float32)
                             * 1e-5], axis=2)
    kw = dict(max_epochs=1, batch_size=8, val_fraction=0.25)
    plain = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, **kw)
    with pytest.raises(ConfigError, match="samples per window"):
        plain.fit(X_span, y)
    dec = make_decoder("eegnet", N_CHANS, 2, SFREQ, WINDOW, augment="crop", **kw).fit(X_span, y)
    from decoders.estimators import stratified_split

    _, va = stratified_split(y, 0.25, seed=0)
    with torch.inference_mode():
        logits = dec.net_(dec._tensor(X_span[va][..., :n_times]))
    val_loss = float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(y[va])))
    assert dec.val_loss_ == pytest.approx(val_loss, rel=1e-5)
    assert dec.predict_proba(X).shape == (len(X), 2)
    with pytest.raises(ConfigError, match="samples per window"):
        dec.predict_proba(X_span)  # prediction keeps the window contract
    dec.partial_fit(X_span[:6], y[:6])  # fine-tuning crops too
