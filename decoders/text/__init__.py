"""EEG-to-text decoding (issue 9): encoder + VQ codex + semantic head + free-running text decoder.

Modules: ``model`` (EEGTextModel, registered as ``eeg2text``), ``estimator`` (EEGTextDecoder:
fit / predict_proba / decode_text), ``inference`` (free-running generation), ``tokenizer``,
``embeddings`` (offline all-MiniLM-L6-v2), ``synthetic`` (reading EEG with known ground truth on
real rest EEG), ``zuco`` (ZuCo 1.0 / 2.0 loaders), ``evaluation`` (disjoint splits, BLEU/ROUGE/
retrieval, noise / shuffled / text-prior baselines), ``bundle`` (TextBundle,
save_text_bundle / load_text_bundle).

Nothing is imported eagerly here: importing ``decoders.text`` costs nothing.
"""
