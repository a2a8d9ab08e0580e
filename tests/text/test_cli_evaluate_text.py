"""``bci-app evaluate-text`` end to end on a tiny synthetic run (structure, not performance)."""

from __future__ import annotations

import json

import pytest

from bci_app.cli import main


@pytest.mark.slow
def test_evaluate_text_cli_json_and_bundle(tmp_path, capsys, eegmmidb_path):
    out = tmp_path / "res.json"
    # 25 sentences: 5 test sentences, the fewest with which the test of EEG use can reach
    # p < 0.01 (1/5! = 0.008)
    rc = main(["evaluate-text", "--snr", "4", "--n-sentences", "25", "--subjects", "1-3",
               "--reps", "1", "--epochs", "1", "--d-model", "32",
               "--conditions", "eeg,text_prior", "--json", str(out),
               "--data-dir", str(eegmmidb_path), "--bundle-out", str(tmp_path / "tb")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "text_prior" in text and "chance" in text and "verdict" in text
    assert "test of EEG use" in text
    res = json.loads(out.read_text())["results"][0]
    assert set(res["conditions"]) == {"eeg", "text_prior"}
    assert res["chance"]["top1"] == 1 / res["setup"]["n_candidates"]
    from decoders.text.bundle import load_text_bundle

    tb = load_text_bundle(tmp_path / "tb")
    assert len(tb.classes) == 25
    assert res["verdict"]["definition"] and res["pairing_test"]["n_sentences"] == 5
    assert tb.config["validation"]["conditions"]["text_prior"]  # stored with its baseline


def test_evaluate_text_refuses_a_result_without_baselines(capsys):
    assert main(["evaluate-text", "--conditions", "eeg"]) == 2
    assert "baselines" in capsys.readouterr().err
