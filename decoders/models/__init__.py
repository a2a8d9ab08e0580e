"""Model families, one module each; every model registers itself in :mod:`decoders.registry`."""
