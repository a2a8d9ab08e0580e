"""Baselines every deep model is compared with, in the same Decoder API.

* ``csp_lda``: CSP (mne.decoding, log-variance features) + shrinkage LDA.
* ``ts_lr``: covariances (OAS) -> Riemannian tangent space (pyriemann) -> logistic regression.

After fitting, inference needs only plain arrays (CSP filters, LDA coef; tangent-space reference,
LR coef), which is what bundles store (safetensors, no pickle). ``partial_fit`` refits the
classifier on the training features plus the new calibration trials: weighted up
(``calib_weight``) for ``ts_lr``; ``csp_lda``'s LDA takes no sample weights, so there every
trial counts once (``calib_weight`` has no effect; the RESULTS figures were measured so). The
training features and labels are saved in the bundle too (``train_features``, ``train_y``), so a loaded
decoder adapts exactly as the one in memory. A bundle written before they were saved still
loads, with a warning: its ``partial_fit`` refits on the calibration trials alone.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..estimators import Decoder, _check_X
from ..registry import register_model

logger = logging.getLogger(__name__)


def _proba_from_decision(d: np.ndarray) -> np.ndarray:
    """sklearn's LDA/LR probabilities: binary -> expit, multiclass -> softmax."""
    if d.ndim == 1 or d.shape[1] == 1:
        d = d.reshape(-1)
        p1 = 1.0 / (1.0 + np.exp(-d))
        return np.stack([1 - p1, p1], axis=1)
    d = d - d.max(axis=1, keepdims=True)
    e = np.exp(d)
    return e / e.sum(axis=1, keepdims=True)


class _LinearHeadDecoder(Decoder):
    """Features -> linear classifier; subclasses define ``_features`` and ``_make_clf``."""

    kind = "sklearn"
    calib_weight: float = 5.0

    def _make_clf(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _features(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fit_features(self, X: np.ndarray, y: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def fit(self, X, y, X_val=None, y_val=None):
        """Fit on X (validation data, if given, is only scored: baselines need no early stop)."""
        X = _check_X(X, self.n_chans, self.n_times).astype(np.float64)
        y = np.asarray(y, dtype=np.int64)
        self._fit_features(X, y)
        F = self._features(X)
        clf = self._make_clf().fit(F, y)
        self.coef_ = np.atleast_2d(clf.coef_).astype(np.float64)
        self.intercept_ = np.atleast_1d(clf.intercept_).astype(np.float64)
        self.classes_ = np.arange(self.n_outputs)
        self.train_features_, self.train_y_ = F, y  # for partial_fit (saved in bundles)
        self.fitted_ = True
        self.val_accuracy_ = float("nan")
        if X_val is not None and len(X_val):
            self.val_accuracy_ = self.score(X_val, y_val)
        return self

    def partial_fit(self, X, y):
        """Refit the classifier on training features + calibration trials (weighted)."""
        if not getattr(self, "fitted_", False):
            return self.fit(X, y)
        X = _check_X(X, self.n_chans, self.n_times).astype(np.float64)
        y = np.asarray(y, dtype=np.int64)
        if len(y) == 0:
            return self
        F = self._features(X)
        src_F = getattr(self, "train_features_", None)
        if src_F is None:
            src_F, src_y = F[:0], y[:0]
        else:
            src_y = self.train_y_
        FF = np.concatenate([src_F, F])
        yy = np.concatenate([src_y, y])
        w = np.concatenate([np.ones(len(src_y)), np.full(len(y), self.calib_weight)])
        if len(np.unique(yy)) < 2:
            return self
        clf = self._make_clf().fit(FF, yy, sample_weight=w) if self._weights_ok else \
            self._make_clf().fit(FF, yy)
        self.coef_ = np.atleast_2d(clf.coef_).astype(np.float64)
        self.intercept_ = np.atleast_1d(clf.intercept_).astype(np.float64)
        return self

    _weights_ok = True

    def predict_proba(self, X) -> np.ndarray:
        self._check_fitted()
        X = _check_X(X, self.n_chans, self.n_times).astype(np.float64)
        d = self._features(X) @ self.coef_.T + self.intercept_
        return _proba_from_decision(d)

    def get_params(self) -> dict[str, Any]:
        return dict(name=self.name, n_chans=self.n_chans, n_outputs=self.n_outputs,
                    sfreq=self.sfreq, window_s=self.window_s, **self._hparams())

    def _hparams(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def hparam_names(cls) -> list[str]:
        """Hyper-parameters the constructor takes besides the signal parameters."""
        import inspect

        return [n for n in inspect.signature(cls.__init__).parameters
                if n not in ("self", "n_chans", "n_outputs", "sfreq", "window_s")]

    @classmethod
    def check_params(cls, params: dict[str, Any], dry_run: bool = True) -> None:
        """ConfigError for a hyper-parameter the baseline does not take or, with ``dry_run``,
        a value its libraries reject (checked by a fit on a few random trials), so a command
        line names a mistyped ``--model-param`` before it loads any data."""
        from bci_app.errors import ConfigError

        known = cls.hparam_names()
        unknown = [k for k in params if k not in known]
        if unknown:
            raise ConfigError(f"model_params: {cls.name} does not take {unknown}; fix: use only "
                              f"{known}")
        if not dry_run:
            return
        rng = np.random.default_rng(0)
        X = rng.standard_normal((16, 8, 64))
        try:
            cls(8, 2, 64.0, 1.0, **params).fit(X, np.arange(16) % 2)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"model_params: {cls.name} rejected {params} ({err}); fix: use "
                              f"valid values for {known}") from None

    def get_state(self):
        """(JSON config, arrays): classifier and feature arrays, plus the training features
        (``train_features``, float64 (n_trials, n_features)) and labels (``train_y``, int64)
        that :meth:`partial_fit` refits on."""
        self._check_fitted()
        arrays = {"coef": self.coef_, "intercept": self.intercept_, **self._feature_arrays()}
        if getattr(self, "train_features_", None) is not None:
            arrays["train_features"] = np.asarray(self.train_features_, dtype=np.float64)
            arrays["train_y"] = np.asarray(self.train_y_, dtype=np.int64)
        return {"params": self.get_params(),
                "fit_info": {"val_accuracy": self.val_accuracy_}}, arrays

    @classmethod
    def from_state(cls, state, arrays):
        params = dict(state["params"])
        params.pop("name", None)
        dec = cls(**params)
        dec.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        dec.intercept_ = np.asarray(arrays["intercept"], dtype=np.float64)
        dec._load_feature_arrays(arrays)
        dec.classes_ = np.arange(dec.n_outputs)
        if "train_features" in arrays and "train_y" in arrays:
            F = np.asarray(arrays["train_features"], dtype=np.float64)
            y = np.asarray(arrays["train_y"], dtype=np.int64)
            if F.ndim != 2 or F.shape[1] != dec.coef_.shape[1] or y.shape != (len(F),) \
                    or (len(y) and (y.min() < 0 or y.max() >= dec.n_outputs)):
                raise ValueError(
                    f"train_features {F.shape} / train_y {y.shape} do not fit a classifier of "
                    f"{dec.coef_.shape[1]} features and {dec.n_outputs} classes")
            dec.train_features_, dec.train_y_ = F, y
        else:
            dec.train_features_, dec.train_y_ = None, None
            logger.warning(
                "%s: this bundle holds no training features (written by an older bci_app); "
                "calibration (partial_fit) will refit the classifier on the user's trials only, "
                "not on the pretraining trials plus the user's. Fix: retrain the bundle with "
                "`bci-app train` to calibrate as evaluated.", cls.name)
        dec.val_accuracy_ = state.get("fit_info", {}).get("val_accuracy", float("nan"))
        dec.fitted_ = True
        return dec

    @property
    def model_version(self) -> int:
        return self._model_version


@register_model("csp_lda", kind="sklearn")
class CSPLDADecoder(_LinearHeadDecoder):
    """CSP (``n_components`` log-variance features, Ledoit-Wolf regularised) + shrinkage LDA."""

    name = "csp_lda"
    _model_version = 1
    _weights_ok = False  # LDA has no sample weights

    def __init__(self, n_chans, n_outputs, sfreq, window_s, n_components: int = 6,
                 reg: str | float | None = "ledoit_wolf") -> None:
        super().__init__(n_chans, n_outputs, sfreq, window_s)
        self.n_components = n_components
        self.reg = reg

    def _hparams(self):
        return dict(n_components=self.n_components, reg=self.reg)

    def _make_clf(self):
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")

    def _fit_features(self, X, y):
        from mne.decoding import CSP
        from mne.utils import use_log_level

        csp = CSP(n_components=self.n_components, reg=self.reg, log=True)
        with use_log_level("error"):
            csp.fit(X, y)
        if getattr(csp, "dec_type", "single") == "multi":
            W = csp._subset_multi_components()
        else:
            W = csp.filters_[: self.n_components]
        self.filters_ = np.asarray(W, dtype=np.float64)
        self._csp = csp

    def _features(self, X):
        S = np.einsum("kc,nct->nkt", self.filters_, X)
        return np.log((S ** 2).mean(axis=2))

    def _feature_arrays(self):
        return {"csp_filters": self.filters_}

    def _load_feature_arrays(self, arrays):
        self.filters_ = np.asarray(arrays["csp_filters"], dtype=np.float64)


@register_model("ts_lr", kind="sklearn")
class TangentSpaceLRDecoder(_LinearHeadDecoder):
    """Covariances (``estimator``) -> tangent space at the Riemannian mean -> logistic regression."""

    name = "ts_lr"
    _model_version = 1

    def __init__(self, n_chans, n_outputs, sfreq, window_s, estimator: str = "oas",
                 metric: str = "riemann", C: float = 1.0) -> None:
        super().__init__(n_chans, n_outputs, sfreq, window_s)
        self.estimator = estimator
        self.metric = metric
        self.C = C

    def _hparams(self):
        return dict(estimator=self.estimator, metric=self.metric, C=self.C)

    def _make_clf(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=1000)

    def _covs(self, X):
        from pyriemann.geometry.covariance import covariances

        return covariances(X, estimator=self.estimator)

    def _fit_features(self, X, y):
        from pyriemann.geometry.mean import gmean

        self.reference_ = gmean(self._covs(X), metric=self.metric)

    def _features(self, X):
        from pyriemann.geometry.tangentspace import tangent_space

        return tangent_space(self._covs(X), self.reference_, metric=self.metric)

    def _feature_arrays(self):
        return {"ts_reference": self.reference_}

    def _load_feature_arrays(self, arrays):
        self.reference_ = np.asarray(arrays["ts_reference"], dtype=np.float64)
