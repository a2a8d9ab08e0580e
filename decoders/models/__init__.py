"""Model families, one module each; every model registers itself in :mod:`decoders.registry`
(:mod:`.ensemble` is not a model but the probability average of several trained ones)."""
