"""Review 13: ``bci-app export --out`` naming the output file itself."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from bci_app.cli import main

from .test_review12b import _record_labels


@pytest.mark.parametrize(("to", "name"), [("fif", "s01_raw.fif"), ("edf", "s01.edf")])
def test_out_naming_a_file_writes_that_file(tmp_path, capsys, to, name):
    """``--out s01_raw.fif`` made a folder called ``s01_raw.fif`` with ``rec_raw.fif`` inside.
    A FIF/EDF name is now the file written; the data are those of the default export."""
    path = tmp_path / "rec.xdf"
    data = _record_labels(path, ["Fp1", "Fp2", "C3"])
    target = tmp_path / "exports" / name
    assert main(["export", str(path), "--to", to, "--out", str(target)]) == 0
    assert target.is_file()
    assert str(target) in capsys.readouterr().out
    raw = mne.io.read_raw(target, preload=True, verbose="error")
    np.testing.assert_allclose(raw.get_data().T * 1e6, data, atol=0.05 if to == "edf" else 1e-4)
    assert main(["export", str(path), "--to", to, "--out", str(target)]) == 2  # no overwrite
    assert "--overwrite" in capsys.readouterr().err


def test_out_naming_a_file_of_another_format_is_refused(tmp_path, capsys):
    path = tmp_path / "rec.xdf"
    _record_labels(path, ["Fp1", "Fp2"])
    assert main(["export", str(path), "--to", "edf", "--out", str(tmp_path / "s01.fif")]) == 2
    err = capsys.readouterr().err
    assert "--to edf writes EDF" in err and "s01.edf" in err
    assert main(["export", str(path), "--to", "bids", "--out", str(tmp_path / "s.vhdr")]) == 2
    assert "BIDS folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [path]


def test_an_existing_folder_with_a_file_suffix_stays_a_folder(tmp_path):
    path = tmp_path / "rec.xdf"
    _record_labels(path, ["Fp1", "Fp2"])
    folder = tmp_path / "exports.fif"
    folder.mkdir()
    assert main(["export", str(path), "--to", "fif", "--out", str(folder)]) == 0
    assert (folder / "rec_raw.fif").is_file()
