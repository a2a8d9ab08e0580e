"""TSMNet's Riemannian layers: matrix functions and their gradients, SPD batch normalisation,
the orthonormal BiMap, fine-tuning with the SPD statistics frozen, and the online engines."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from decoders.estimators import make_decoder
from decoders.models.tsmnet import SPDBatchNormLog, sym_fn, tril_vector


def _spd(n_batch, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n_batch, n, n, generator=g, dtype=torch.float64)
    return A @ A.transpose(-1, -2) + 0.1 * torch.eye(n, dtype=torch.float64)


def test_matrix_functions_match_scipy():
    C = _spd(3, 6)
    for i in range(3):
        c = C[i].numpy()
        np.testing.assert_allclose(sym_fn(C, "log")[i].numpy(), scipy.linalg.logm(c).real,
                                   atol=1e-10)
        np.testing.assert_allclose(sym_fn(C, "exp_half_neg")[i].numpy(),
                                   scipy.linalg.expm(-c / 2), atol=1e-10)
    s = torch.linalg.eigvalsh(sym_fn(C, "reeig", 1.0))
    assert float(s.min()) >= 1.0 - 1e-10


@pytest.mark.parametrize("fn", ["log", "exp_half_neg", "reeig"])
def test_matrix_function_gradients(fn):
    """Daleckii-Krein backward == finite differences (distinct eigenvalues)."""
    C = _spd(2, 5, seed=1).requires_grad_(True)
    eps = 0.5 if fn == "reeig" else 0.0  # some eigenvalues clamped, some not

    def f(X):
        return sym_fn(0.5 * (X + X.transpose(-1, -2)), fn, eps)

    assert torch.autograd.gradcheck(f, (C,))


def test_gradient_is_finite_for_repeated_eigenvalues():
    """Clamped (ReEig) or identical eigenvalues make torch.linalg.eigh's own gradient infinite;
    ours uses f'(s) there: d/dX sum(log(X)) at X = I is the all-ones matrix."""
    I = torch.eye(4, dtype=torch.float64, requires_grad=True)
    sym_fn(I, "log").sum().backward()
    np.testing.assert_allclose(I.grad.numpy(), np.ones((4, 4)), atol=1e-12)
    X = torch.diag(torch.tensor([1e-6, 1e-6, 2.0], dtype=torch.float64)).requires_grad_(True)
    sym_fn(X, "reeig", 1e-4).sum().backward()
    assert torch.isfinite(X.grad).all()
    np.testing.assert_allclose(torch.diagonal(X.grad).numpy(), [0.0, 0.0, 1.0], atol=1e-12)


def test_tril_vector_keeps_the_frobenius_norm():
    S = sym_fn(_spd(4, 5), "log")
    np.testing.assert_allclose(tril_vector(S).norm(dim=1).numpy(),
                               torch.linalg.matrix_norm(S).numpy(), rtol=1e-12)


def test_spd_batchnorm_centres_and_scales():
    """For commuting (diagonal) matrices the log-Euclidean re-centring is exact: the batch's
    output logarithms have zero mean and mean squared norm exp(log_std)^2."""
    g = torch.Generator().manual_seed(0)
    C = torch.diag_embed(torch.exp(torch.randn(16, 5, generator=g, dtype=torch.float64) + 3.0))
    bn = SPDBatchNormLog(5, momentum=1.0, eps=0.0)
    with torch.no_grad():
        bn.log_std.fill_(np.log(2.0))
    T = bn.train()(C).detach()
    np.testing.assert_allclose(T.mean(0).numpy(), np.zeros((5, 5)), atol=1e-10)
    np.testing.assert_allclose(float((T * T).sum((-1, -2)).mean()), 4.0, rtol=1e-10)
    # momentum 1: the running statistics are the batch's, so eval mode gives the same output
    C2 = _spd(16, 5, seed=3)
    T_train = bn.train()(C2)
    T_eval = bn.eval()(C2)
    np.testing.assert_allclose(T_eval.detach().numpy(), T_train.detach().numpy(), atol=1e-10)


def test_fit_keeps_bimap_orthonormal_and_finetuning_freezes_spd_statistics(toy):
    X, y = toy
    dec = make_decoder("tsmnet", 8, 2, 64.0, 2.0, max_epochs=3, batch_size=8).fit(X, y)
    W = dec.net_.bimap.weight.detach()
    np.testing.assert_allclose((W @ W.T).numpy(), np.eye(W.shape[0]), atol=1e-10)
    bn = dec.net_.bn
    before = bn.running_log_mean.clone(), bn.running_var.clone()
    spatial = dec.net_.spatial.weight.detach().clone()
    dec.partial_fit(X[:8] * 2.0, y[:8], epochs=2)
    assert torch.equal(bn.running_log_mean, before[0]) and torch.equal(bn.running_var, before[1])
    assert not torch.equal(dec.net_.spatial.weight, spatial)  # the rest was fine-tuned


def test_weight_decay_spares_the_bimap(toy):
    """Weight decay on the BiMap's raw orthogonal parametrization wrecks the projection within a
    few steps (training loss stuck at log 2); the decoder leaves it out of the decay."""
    X, y = toy
    dec = make_decoder("tsmnet", 8, 2, 64.0, 2.0, max_epochs=40, batch_size=64,
                       weight_decay=1e-2, val_fraction=0).fit(X, y)
    losses = [h["train_loss"] for h in dec.history_]
    assert losses[-1] < 0.5 * losses[0]
    assert dec.score(X, y) == 1.0  # the toy classes differ 3x in amplitude on channel 0


def test_bundle_with_onnx_request_is_kept_and_error_is_clear(toy, tmp_path):
    from bci_app.errors import ConfigError
    from decoders.bundle import load_bundle, save_bundle

    X, y = toy
    dec = make_decoder("tsmnet", 8, 2, 64.0, 2.0, max_epochs=2, batch_size=8).fit(X, y)
    meta = dict(channels=[f"E{i}" for i in range(8)], classes=["l", "r"], preprocessing={})
    with pytest.raises(ConfigError, match="ONNX export.*bundle itself was written"):
        save_bundle(dec, tmp_path / "b", meta, export_onnx=True)
    np.testing.assert_array_equal(load_bundle(tmp_path / "b").predict_proba(X),
                                  dec.predict_proba(X))


def test_online_engines_fall_back_to_torch():
    """No ONNX export for TSMNet: the worker's engine choice keeps the PyTorch reference."""
    from decoders.online import _fast_engines

    rng = np.random.default_rng(0)
    X = (rng.standard_normal((20, 8, 160)) * 1e-5).astype(np.float32)
    y = np.arange(20) % 2
    dec = make_decoder("tsmnet", 8, 2, 80.0, 2.0, max_epochs=2, batch_size=10).fit(X, y)
    assert _fast_engines(dec, "auto") == {}
    assert dec.predict_proba(X[:3]).shape == (3, 2)
