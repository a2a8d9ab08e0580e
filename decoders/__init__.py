"""Decoders: preprocessing, models, training and evaluation, online inference. No Qt, no device I/O."""
