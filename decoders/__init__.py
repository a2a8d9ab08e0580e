"""Decoders: preprocessing, models, training and evaluation, online inference. No Qt, no device I/O.

Entry points (see each module's docstring):

* :mod:`decoders.preprocessing` -- ``Preprocessor`` (config), ``StreamingFilter`` (causal, with
  state; ``process(chunk (n_samples, n_channels))``), ``ChannelMapping``, ``EuclideanAlignment``.
* :mod:`decoders.registry` -- ``register_model``, ``build_model``, ``list_models``.
* :mod:`decoders.estimators` -- ``Decoder`` API (``fit``/``partial_fit``/``predict_proba``),
  ``make_decoder``.
* :mod:`decoders.bundle` -- ``save_bundle``, ``load_bundle`` -> ``Bundle``.
* :mod:`decoders.data` -- EEGMMIDB loading; :mod:`decoders.evaluation` -- protocols and report.

Nothing here is imported eagerly: importing ``decoders`` does not import torch.
"""
