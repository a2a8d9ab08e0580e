"""Review 16c: text bundles keep the channel contract of motor-imagery bundles, and a text
bundle whose ``kind`` was edited is named as such by both loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci_app.errors import BundleError
from decoders.text.bundle import is_text_bundle, load_text_bundle, save_text_bundle
from decoders.text.estimator import EEGTextDecoder, TextTrainSettings
from decoders.text.synthetic import text_preprocessor

CHANNELS = ["Fz", "Cz", "Pz", "Oz"]


@pytest.fixture(scope="module")
def small_decoder():
    """A 4-channel decoder fitted one epoch on random windows (shape and contract only)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 4, 160)).astype(np.float32)
    dec = EEGTextDecoder(4, 80.0, 2.0, {"d_model": 32}, TextTrainSettings(max_epochs=1))
    return dec.fit(X, ["a cat", "a dog", "the cat sat", "the dog ran"] * 2)


def test_text_bundle_without_preprocessing_channels_reads_its_own_channel_order(
        small_decoder, tmp_path):
    # "all channels" (Preprocessor's default) used to let the source's order through: a stream
    # with the bundle's electrodes in another order fed the model Oz as Fz, without an error
    pre = text_preprocessor(CHANNELS, 80.0)
    pre.channels = None
    tb = load_text_bundle(save_text_bundle(small_decoder, tmp_path / "tb", {
        "channels": CHANNELS, "preprocessing": pre.to_dict()}))
    src = CHANNELS[::-1] + ["Fp1"]
    filt = tb.streaming_filter(160.0, src)
    assert list(filt.ch_names_out) == CHANNELS
    x = np.random.default_rng(1).standard_normal((800, len(src))) * 1e-5
    ref = tb.streaming_filter(160.0, CHANNELS).process(x[:, [3, 2, 1, 0]])
    np.testing.assert_allclose(filt.process(x), ref, atol=1e-9)


def test_save_text_bundle_refuses_preprocessing_channels_in_another_order(small_decoder,
                                                                          tmp_path):
    # it used to write the bundle, which load_text_bundle then refused
    with pytest.raises(BundleError, match="'channels' and 'preprocessing.channels' differ"):
        save_text_bundle(small_decoder, tmp_path / "tb", {
            "channels": CHANNELS, "preprocessing": text_preprocessor(CHANNELS[::-1]).to_dict()})
    assert not (tmp_path / "tb" / "config.json").exists()


@pytest.mark.parametrize("kind", [None, "Text"])
def test_a_text_bundle_with_an_edited_kind_is_named_by_both_loaders(small_decoder, tmp_path,
                                                                    kind):
    from decoders.bundle import load_bundle

    path = save_text_bundle(small_decoder, tmp_path / "tb", {
        "channels": CHANNELS, "preprocessing": text_preprocessor(CHANNELS, 80.0).to_dict()})
    cfg = json.loads((path / "config.json").read_text())
    if kind is None:
        del cfg["kind"]
    else:
        cfg["kind"] = kind
    (path / "config.json").write_text(json.dumps(cfg))
    assert is_text_bundle(path)
    # load_text_bundle said "a None bundle ... Fix: load it with decoders.bundle.load_bundle",
    # which blamed the weights ("weights ... do not fit the model config ('kind')")
    for load in (load_text_bundle, load_bundle):
        with pytest.raises(BundleError, match=r"'kind'.*EEG-to-text model.*set 'kind' to "
                                              r"\"text\""):
            load(path)
    cfg["kind"] = "torch"  # a motor-imagery kind is never taken for a text bundle
    (path / "config.json").write_text(json.dumps(cfg))
    assert not is_text_bundle(path)


def test_zuco_sentence_with_other_spacing_is_one_sentence():
    """Sentence ids came from the exact text: the same sentence stored with other spacing (in
    another ZuCo version or task) got a second id, and the sentence-disjoint split could put one
    copy in training and the other in the test set."""
    import numpy as np

    from decoders.text.zuco import ZucoSentence, zuco_to_dataset

    rng = np.random.default_rng(0)

    def sent(subject, content):
        return ZucoSentence(subject=subject, task="NR", index=0, content=content,
                            eeg=rng.standard_normal((105, 600)), words=[], version="1.0")

    ds = zuco_to_dataset([sent("ZAB", "The cat sat on the mat."),
                          sent("YAC", " The cat  sat on the mat. "),
                          sent("YAC", "The cat sat on a mat.")], window_s=1.0)
    assert ds.sentence_ids.tolist() == [0, 0, 1]
    assert ds.corpus == ["The cat sat on the mat.", "The cat sat on a mat."]
