"""One estimator API for deep models and baselines (scikit-learn's contract).

``Decoder.fit(X, y, X_val=None, y_val=None) -> self``; ``predict_proba(X) -> (n, n_classes)``;
``predict(X)``; ``partial_fit(X, y)`` fine-tunes a fitted decoder on a few calibration trials.
``X`` has shape (n_trials, n_chans, n_times), float, volts after preprocessing (and after
Euclidean alignment when the protocol uses it). ``y`` holds integer labels 0..n_classes-1.

Decoders are not thread-safe; the DecoderWorker thread owns one and calls ``predict_proba``.
Bundles persist a decoder through :meth:`Decoder.get_state` / :meth:`Decoder.from_state`
(plain JSON + arrays; no pickle).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Sequence

import numpy as np

from bci_app.errors import ConfigError

from .registry import get_entry

logger = logging.getLogger(__name__)

__all__ = ["Decoder", "DeepDecoder", "make_decoder", "stratified_split"]


def _check_X(X: Any, n_chans: int | None = None, n_times: int | None = None,
             longer_ok: bool = False) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 3:
        raise ConfigError(f"X: expected shape (n_trials, n_chans, n_times), got {X.shape}")
    if n_chans is not None and X.shape[1] != n_chans:
        raise ConfigError(f"X: expected {n_chans} channels, got {X.shape[1]} (shape {X.shape})")
    if longer_ok and n_times is not None and X.shape[2] > n_times:
        return X
    if n_times is not None and X.shape[2] != n_times:
        raise ConfigError(
            f"X: expected {n_times} samples per window, got {X.shape[2]} (shape {X.shape}); "
            "fix: cut windows of the length the decoder was built for"
        )
    return X


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) with ``fraction`` of each class in val (at least 1 per class)."""
    rng = np.random.default_rng(seed)
    tr, va = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n_val = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        va.append(idx[:n_val])
        tr.append(idx[n_val:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


class Decoder:
    """Base of every decoder. Subclasses set ``classes_`` in ``fit``."""

    name: str = "?"
    kind: str = "?"

    def __init__(self, n_chans: int, n_outputs: int, sfreq: float, window_s: float) -> None:
        self.n_chans = n_chans
        self.n_outputs = n_outputs
        self.sfreq = sfreq
        self.window_s = window_s

    @property
    def n_times(self) -> int:
        return int(round(self.sfreq * self.window_s))

    def fit(self, X, y, X_val=None, y_val=None) -> Decoder:  # pragma: no cover - abstract
        raise NotImplementedError

    def partial_fit(self, X, y) -> Decoder:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict_proba(self, X) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X) -> np.ndarray:
        """Most probable class index per trial, shape (n_trials,)."""
        return np.argmax(self.predict_proba(X), axis=1)

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X, y) first")

    def clone(self) -> Decoder:
        return copy.deepcopy(self)

    # persistence ------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serializable)."""
        raise NotImplementedError  # pragma: no cover

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON config, named arrays) describing the fitted decoder."""
        raise NotImplementedError  # pragma: no cover

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Decoder:
        raise NotImplementedError  # pragma: no cover


#: option of ``bci-app train/evaluate`` for each optimisation setting, for the messages
_OPTION = {"lr": "--lr", "finetune_lr": "--finetune-lr", "weight_decay": "weight_decay",
           "batch_size": "--batch-size", "max_epochs": "--epochs", "patience": "--patience",
           "finetune_epochs": "--finetune-epochs", "val_fraction": "val_fraction"}


def _check_optimisation(**values) -> None:
    """ConfigError naming the setting (and its CLI option) that cannot train a network: a
    learning rate that is not > 0 (torch's bare ValueError), a batch size < 1 (a bare
    ``range()`` error), no epochs or a patience < 1 (an untrained or one-epoch net reported as
    if trained)."""
    import math

    rules = {"lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0, e.g. 1e-3"),
             "finetune_lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
             "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a number >= 0"),
             "batch_size": (lambda v: int(v) == v and v >= 1, "an integer >= 1, e.g. 64"),
             "max_epochs": (lambda v: int(v) == v and v >= 1, "an integer >= 1"),
             "patience": (lambda v: int(v) == v and v >= 1, "an integer >= 1"),
             "finetune_epochs": (lambda v: int(v) == v and v >= 0, "an integer >= 0"),
             "val_fraction": (lambda v: 0 <= v < 1, "a fraction in [0, 1)")}
    for name, value in values.items():
        ok, what = rules[name]
        try:
            good = ok(float(value))
        except (TypeError, ValueError, OverflowError):
            good = False
        if not good:
            raise ConfigError(f"{name} ({_OPTION[name]}): expected {what}, got {value!r}.")


class DeepDecoder(Decoder):
    """A registered torch model trained with Adam, early stopping and a fixed seed.

    Parameters
    ----------
    model : str
        Registry name (``eegnet``, ``shallowconvnet``, ``eeg_simpleconv``, ``eeg_conformer``,
        ``tsmnet``, ``braindecode:<Model>``).
    n_chans, n_outputs, sfreq, window_s : signal parameters of the input windows.
    model_params : dict, optional
        Hyper-parameters of the model.
    lr, weight_decay, batch_size, max_epochs : optimisation settings.
    patience : int
        Early stopping: stop after this many epochs without a better validation loss, then
        restore the best weights.
    val_fraction : float
        Share of the *training* trials (stratified) held out for early stopping when ``fit`` gets
        no ``X_val``.
    finetune_epochs, finetune_lr : used by :meth:`partial_fit` (calibration fine-tuning).
    finetune_layers : ``"all"`` (every layer, BatchNorm statistics frozen) or ``"head"`` (only
        the last linear layer; the feature extractor is kept as pretrained).
    augment : str
        Comma-separated label-preserving augmentations drawn per batch during training and
        fine-tuning (never at prediction): ``flip`` (sign of each trial, p = 0.5), ``reverse``
        (time reversal, p = 0.5), ``sr`` (segmentation and recombination, Lotte 2015: each of 8
        time segments taken from a random trial of the same class in the batch), ``noise``
        (Gaussian, 10 % of the signal's sd), ``scale`` (amplitude x U(0.8, 1.2) per trial),
        ``crop`` (random cropping, Schirrmeister et al. 2017: ``fit``/``partial_fit`` then accept
        trials longer than the window -- e.g. ``EpochsData.X_span`` -- and each batch takes one
        window-long crop per trial at a uniformly random offset; validation uses each trial's
        first window, the one the evaluation tests on; without ``crop`` longer trials are an
        error). Band power and spatial covariance -- what motor imagery is decoded from -- are
        unchanged by ``flip`` and ``reverse``. The net always sees ``window_s`` windows, so
        prediction and the online window contract are the same with or without ``crop``.
    n_ensemble : int
        Train this many copies of the net from different seeds (``seed + 10007 * i``), one after
        the other with the same data and validation split, and predict the mean of their class
        probabilities (:class:`decoders.models.ensemble.ProbabilityAverage`). Fine-tuning adapts
        every member on its own loss. 1 (default): a single net.
    device : str
        Torch device for training and prediction (``"cpu"``, ``"cuda"``). Not saved in bundles:
        a loaded bundle runs on the CPU.
    seed : int
        Seeds a private ``torch.Generator`` and ``numpy.random.default_rng`` (no global seeding).
    verbose : bool
        Show a tqdm progress bar per fit.
    """

    kind = "torch"

    def __init__(self, model: str, n_chans: int, n_outputs: int, sfreq: float, window_s: float,
                 model_params: dict | None = None, lr: float = 1e-3, weight_decay: float = 0.0,
                 batch_size: int = 64, max_epochs: int = 100, patience: int = 15,
                 val_fraction: float = 0.2, finetune_epochs: int = 20, finetune_lr: float = 3e-4,
                 finetune_layers: str = "all", augment: str = "", n_ensemble: int = 1,
                 seed: int = 0, verbose: bool = False, device: str = "cpu") -> None:
        super().__init__(n_chans, n_outputs, sfreq, window_s)
        _check_optimisation(lr=lr, finetune_lr=finetune_lr, weight_decay=weight_decay,
                            batch_size=batch_size, max_epochs=max_epochs, patience=patience,
                            finetune_epochs=finetune_epochs, val_fraction=val_fraction)
        self.model = model
        self.model_params = dict(model_params or {})
        self.lr, self.weight_decay = lr, weight_decay
        self.batch_size, self.max_epochs, self.patience = batch_size, max_epochs, patience
        self.val_fraction = val_fraction
        self.finetune_epochs, self.finetune_lr = finetune_epochs, finetune_lr
        if finetune_layers not in ("all", "head"):
            raise ConfigError(f"finetune_layers: expected 'all' or 'head', got {finetune_layers!r}")
        self.finetune_layers = finetune_layers
        self.augment = _parse_augment(augment)
        if int(n_ensemble) < 1:
            raise ConfigError(f"n_ensemble: expected an integer >= 1, got {n_ensemble!r}")
        self.n_ensemble = int(n_ensemble)
        self.device = str(device)
        self.seed = seed
        self.verbose = verbose
        self.name = model
        self.net_ = self._build_net()

    def _build_member(self):
        entry = get_entry(self.model)
        if entry.kind != "torch":
            raise ConfigError(f"model: {self.model!r} is not a torch model; use make_decoder()")
        return entry.obj(n_chans=self.n_chans, n_outputs=self.n_outputs, sfreq=self.sfreq,
                         window_s=self.window_s, **self.model_params)

    def _build_net(self):
        if self.n_ensemble == 1:
            return self._build_member()
        from .models.ensemble import ProbabilityAverage

        return ProbabilityAverage([self._build_member() for _ in range(self.n_ensemble)])

    def _members(self) -> list:
        """The independently trained nets (one unless ``n_ensemble > 1``)."""
        return list(self.net_.members) if self.n_ensemble > 1 else [self.net_]

    def _member_seed(self, i: int) -> int:
        return int(self.seed) + 10007 * i

    @property
    def model_version(self) -> int:
        return int(getattr(self.net_, "model_version", 0))

    def get_params(self) -> dict[str, Any]:
        return dict(model=self.model, n_chans=self.n_chans, n_outputs=self.n_outputs,
                    sfreq=self.sfreq, window_s=self.window_s,
                    model_params=dict(getattr(self.net_, "hparams", self.model_params)),
                    lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                    max_epochs=self.max_epochs, patience=self.patience,
                    val_fraction=self.val_fraction, finetune_epochs=self.finetune_epochs,
                    finetune_lr=self.finetune_lr, finetune_layers=self.finetune_layers,
                    augment=",".join(self.augment), n_ensemble=self.n_ensemble, seed=self.seed)

    # --- training --------------------------------------------------------------------------
    def _tensor(self, X):
        import torch

        return torch.as_tensor(np.asarray(X, dtype=np.float32) * np.float32(self.scale_),
                               device=self.device)

    def _head(self, net=None):
        """The last linear layer of ``net`` (default: the single net), what
        ``finetune_layers="head"`` trains."""
        from torch import nn

        net = self.net_ if net is None else net
        lins = [m for m in net.modules() if isinstance(m, nn.Linear)]
        if not lins:
            raise ConfigError(f"finetune_layers: {self.model} has no linear output layer")
        return lins[-1]

    def _run_epochs(self, net, Xt, yt, Xv, yv, epochs: int, lr: float, desc: str, seed: int,
                    freeze_bn: bool = False, params=None) -> dict:
        """Train ``net`` in place (best validation weights restored); returns its best
        validation loss/accuracy/epoch. Batches and augmentations are drawn from ``seed``."""
        import torch
        from torch import nn

        gen = torch.Generator().manual_seed(int(seed))
        agen = torch.Generator(device=self.device).manual_seed(int(seed) + 7)
        self.history_ = []
        params = list(net.parameters()) if params is None else list(params)
        opt = torch.optim.Adam(_param_groups(net, params, self.weight_decay), lr=lr)
        constrain = getattr(net, "apply_constraints", None)
        best = dict(val_loss=float("nan"), val_accuracy=float("nan"), best_epoch=epochs)
        loss_fn = nn.CrossEntropyLoss()
        best_loss, best_state, bad = np.inf, None, 0
        bar = range(epochs)
        if self.verbose:
            from tqdm import tqdm

            bar = tqdm(bar, desc=desc, unit="epoch", leave=False)
        bs = min(self.batch_size, len(yt))
        crop = Xt.shape[2] > self.n_times  # only possible with augment "crop" (checked in fit)
        for _ in bar:
            net.train()
            if freeze_bn:
                for m in net.modules():
                    if (isinstance(m, nn.modules.batchnorm._BatchNorm)
                            or getattr(m, "is_batch_norm", False)):  # e.g. TSMNet's SPD BN
                        m.eval()
            perm = torch.randperm(len(yt), generator=gen)
            tl, tn = 0.0, 0
            for i in range(0, len(perm), bs):
                b = perm[i:i + bs].to(self.device)
                if len(b) < 2 and not freeze_bn:
                    continue  # BatchNorm needs 2 samples
                xb, ybt = Xt[b], yt[b]
                if crop:
                    xb = _random_crop(xb, self.n_times, agen)
                if self.augment:
                    xb = _apply_augment(xb, ybt, self.augment, agen)
                opt.zero_grad()
                loss = loss_fn(net(xb), ybt)
                loss.backward()
                opt.step()
                if constrain is not None:
                    constrain()
                tl, tn = tl + float(loss.detach()) * len(b), tn + len(b)
            self.history_.append({"epoch": _ + 1, "train_loss": tl / max(tn, 1)})
            if Xv is None:
                continue
            net.eval()
            with torch.inference_mode():
                logits = net(Xv)
                vloss = float(loss_fn(logits, yv))
                vacc = float((logits.argmax(1) == yv).float().mean())
            self.history_[-1].update(val_loss=vloss, val_acc=vacc)
            if self.verbose:
                bar.set_postfix(val_loss=f"{vloss:.3f}", val_acc=f"{vacc:.2f}")
            if vloss < best_loss - 1e-4:
                best_loss, bad = vloss, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                best = dict(val_loss=vloss, val_accuracy=vacc, best_epoch=_ + 1)
            else:
                bad += 1
                if bad >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return best

    def fit(self, X, y, X_val=None, y_val=None) -> DeepDecoder:
        """Train from scratch. Validation (early stopping) uses ``X_val`` or a stratified
        ``val_fraction`` of ``X``; the input scale is estimated on the training part only."""
        import torch

        crop = "crop" in self.augment
        X = _check_X(X, self.n_chans, self.n_times, longer_ok=crop)
        y = np.asarray(y, dtype=np.int64)
        if X_val is None and self.val_fraction > 0:
            tr, va = stratified_split(y, self.val_fraction, self.seed)
            X, y, X_val, y_val = X[tr], y[tr], X[va], y[va]
        if X_val is not None:  # validate on the window the evaluation tests on
            X_val = _check_X(X_val, self.n_chans, self.n_times, longer_ok=crop)[..., :self.n_times]
        self._n_fits = 0
        self.scale_ = float(1.0 / max(float(np.std(X)), 1e-30))
        self.classes_ = np.arange(self.n_outputs)
        self.val_loss_, self.val_accuracy_, self.best_epoch_ = float("nan"), float("nan"), 0
        Xt, yt = self._tensor(X), torch.as_tensor(y, device=self.device)
        Xv = self._tensor(X_val) if X_val is not None else None
        yv = (torch.as_tensor(np.asarray(y_val, dtype=np.int64), device=self.device)
              if X_val is not None else None)
        # Scoped seeding (restored on exit): weight init and dropout draw from torch's default
        # generator, which cannot be passed to nn.init / nn.Dropout.
        members, bests = [], []
        for i in range(self.n_ensemble):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._member_seed(i))
                net = self._build_member().to(self.device)
                desc = f"train {self.model}" + (f" {i + 1}/{self.n_ensemble}"
                                                 if self.n_ensemble > 1 else "")
                bests.append(self._run_epochs(net, Xt, yt, Xv, yv, self.max_epochs, self.lr,
                                              desc, seed=self._member_seed(i)))
            members.append(net)
        self._n_fits = 1
        if self.n_ensemble == 1:
            self.net_ = members[0]
            self.val_loss_, self.val_accuracy_ = bests[0]["val_loss"], bests[0]["val_accuracy"]
        else:
            from .models.ensemble import ProbabilityAverage

            self.net_ = ProbabilityAverage(members).to(self.device).eval()
            if Xv is not None:  # the ensemble's own validation figures
                with torch.inference_mode():
                    logits = self.net_(Xv)
                    self.val_loss_ = float(torch.nn.functional.cross_entropy(logits, yv))
                    self.val_accuracy_ = float((logits.argmax(1) == yv).float().mean())
        self.best_epochs_ = [int(b["best_epoch"]) for b in bests]
        self.best_epoch_ = int(round(float(np.mean(self.best_epochs_))))
        self.n_train_ = len(y)
        self.fitted_ = True
        return self

    def partial_fit(self, X, y, epochs: int | None = None, lr: float | None = None) -> DeepDecoder:
        """Fine-tune a fitted model on a few labelled trials: all layers with BatchNorm
        statistics frozen, or only the output layer (``finetune_layers="head"``).

        Unfitted: same as :meth:`fit`."""
        import torch

        if not getattr(self, "fitted_", False):
            return self.fit(X, y)
        X = _check_X(X, self.n_chans, self.n_times, longer_ok="crop" in self.augment)
        y = np.asarray(y, dtype=np.int64)
        if len(y) == 0:
            return self
        self.net_.to(self.device)
        Xt, yt = self._tensor(X), torch.as_tensor(y, device=self.device)
        for i, net in enumerate(self._members()):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self._member_seed(i) + 1000 + self._n_fits)
                params = self._head(net).parameters() if self.finetune_layers == "head" else None
                self._run_epochs(net, Xt, yt, None, None, epochs or self.finetune_epochs,
                                 lr or self.finetune_lr, f"fine-tune {self.model}",
                                 seed=self._member_seed(i) + self._n_fits, freeze_bn=True,
                                 params=params)
        self._n_fits += 1
        self.net_.eval()
        return self

    def predict_proba(self, X) -> np.ndarray:
        import torch

        self._check_fitted()
        X = _check_X(X, self.n_chans, self.n_times)
        self.net_.eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(X), 256):
                logits = self.net_(self._tensor(X[i:i + 256]))
                out.append(torch.softmax(logits, dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_outputs), np.float32)

    # --- persistence ----------------------------------------------------------------------
    def get_state(self):
        self._check_fitted()
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays["scale"] = np.array([self.scale_], dtype=np.float64)
        info = dict(val_loss=self.val_loss_, val_accuracy=self.val_accuracy_,
                    best_epoch=self.best_epoch_, n_train=getattr(self, "n_train_", None))
        return {"params": self.get_params(), "fit_info": info}, arrays

    @classmethod
    def from_state(cls, state, arrays):
        import torch

        dec = cls(**state["params"])
        sd = {k[4:]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("net.")}
        dec.net_.load_state_dict(sd, strict=True)
        dec.net_.eval()
        dec.scale_ = float(arrays["scale"][0])
        dec.classes_ = np.arange(dec.n_outputs)
        info = state.get("fit_info", {})
        dec.val_loss_ = info.get("val_loss", float("nan"))
        dec.val_accuracy_ = info.get("val_accuracy", float("nan"))
        dec.best_epoch_ = info.get("best_epoch", 0)
        if info.get("n_train") is not None:
            dec.n_train_ = int(info["n_train"])
        dec._n_fits = 1
        dec.fitted_ = True
        return dec


def _param_groups(net, params: list, weight_decay: float) -> list[dict]:
    """Optimiser groups: ``weight_decay`` on every parameter except those a module lists in its
    ``no_weight_decay()`` (TSMNet's orthogonal BiMap: its raw parametrization has no meaningful
    magnitude, and decaying it destroys the projection within a few steps)."""
    skip = set()
    for m in net.modules():
        fn = getattr(m, "no_weight_decay", None)
        if callable(fn):
            skip |= {id(p) for p in fn()}
    groups = [{"params": [p for p in params if id(p) not in skip],
               "weight_decay": weight_decay}]
    kept = [p for p in params if id(p) in skip]
    if kept:
        groups.append({"params": kept, "weight_decay": 0.0})
    return groups


AUGMENTATIONS = ("flip", "reverse", "sr", "noise", "scale", "crop")


def _parse_augment(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    items = spec.split(",") if isinstance(spec, str) else list(spec or ())
    items = tuple(a.strip() for a in items if a and a.strip())
    bad = [a for a in items if a not in AUGMENTATIONS]
    if bad:
        raise ConfigError(f"augment: unknown {bad}; expected a comma-separated subset of "
                          f"{list(AUGMENTATIONS)}")
    return items


def _random_crop(x, n_times: int, gen):
    """One ``n_times``-long window per trial of ``x`` (batch, chans, longer times), each at a
    uniformly random offset drawn from ``gen`` (torch)."""
    import torch

    n, c, t = x.shape
    off = torch.randint(0, t - n_times + 1, (n,), device=x.device, generator=gen)
    idx = off[:, None] + torch.arange(n_times, device=x.device)[None, :]
    return x.gather(2, idx[:, None, :].expand(n, c, n_times))


def _apply_augment(x, y, which: Sequence[str], gen, n_segments: int = 8):
    """Augmented copy of a batch ``x`` (batch, chans, times) with labels ``y`` (torch)."""
    import torch

    n = x.shape[0]
    if "sr" in which and n > 1:
        # segmentation & recombination: segment j of trial i comes from a random same-class trial
        bounds = np.linspace(0, x.shape[2], n_segments + 1).astype(int)
        out = x.clone()
        for j in range(n_segments):
            r = torch.rand(n, device=x.device, generator=gen)
            # rank a random key inside each class -> a random same-class partner per trial
            src = torch.empty(n, dtype=torch.long, device=x.device)
            for c in torch.unique(y):
                idx = torch.nonzero(y == c).flatten()
                src[idx] = idx[torch.argsort(r[idx])]
            out[:, :, bounds[j]:bounds[j + 1]] = x[src, :, bounds[j]:bounds[j + 1]]
        x = out
    if "reverse" in which:
        m = torch.rand(n, device=x.device, generator=gen) < 0.5
        x = torch.where(m[:, None, None], x.flip(2), x)
    if "flip" in which:
        sign = torch.where(torch.rand(n, device=x.device, generator=gen) < 0.5, -1.0, 1.0)
        x = x * sign[:, None, None]
    if "scale" in which:
        x = x * (0.8 + 0.4 * torch.rand(n, 1, 1, device=x.device, generator=gen))
    if "noise" in which:
        x = x + 0.1 * x.std() * torch.randn(x.shape, device=x.device, generator=gen)
    return x


def make_decoder(name: str, n_chans: int, n_outputs: int, sfreq: float, window_s: float,
                 **params: Any) -> Decoder:
    """A fresh, unfitted decoder for any registered name (deep model or baseline).

    For torch models ``params`` go to :class:`DeepDecoder` (``model_params=`` for the net).
    """
    entry = get_entry(name)
    if entry.kind == "torch":
        return DeepDecoder(name, n_chans, n_outputs, sfreq, window_s, **params)
    check = getattr(entry.obj, "check_params", None)
    if check is not None:  # an unknown keyword is a ConfigError naming it, not a TypeError
        check(params, dry_run=False)
    return entry.obj(n_chans=n_chans, n_outputs=n_outputs, sfreq=sfreq, window_s=window_s,
                     **params)


def decoder_from_state(kind: str, state: dict, arrays: dict) -> Decoder:
    """Rebuild a decoder saved with :meth:`Decoder.get_state`."""
    if kind == "torch":
        return DeepDecoder.from_state(state, arrays)
    entry = get_entry(state["params"]["name"])
    return entry.obj.from_state(state, arrays)
