"""ZuCo loaders on tiny files written in ZuCo 1.0 (MATLAB v5) and 2.0 (v7.3 / HDF5) structure."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.io import savemat

from bci_app.errors import DataFileError
from decoders.text.zuco import find_zuco_files, load_zuco, read_zuco_file, zuco_to_dataset

C = 105
SENTS = ["Hello world.", "The cat sat on the mat.", "Missing sentence."]


def _eeg(rng, n):
    return (10 * rng.standard_normal((C, n))).astype(np.float64)  # µV, channels x samples


def write_zuco1(path, seed=0):
    """sentenceData as a 1 x n struct array; the third sentence has no recording (word = NaN)."""
    rng = np.random.default_rng(seed)
    sdt = [("content", "O"), ("rawData", "O"), ("word", "O")]
    wdt = [("content", "O"), ("nFixations", "O"), ("rawEEG", "O")]
    sd = np.zeros((1, len(SENTS)), dtype=sdt)
    for i, s in enumerate(SENTS):
        sd[0, i]["content"] = s
        if i == 2:
            sd[0, i]["rawData"] = np.full((1, 1), np.nan)
            sd[0, i]["word"] = np.nan
            continue
        sd[0, i]["rawData"] = _eeg(rng, 600 + 100 * i)
        words = s.split()
        w = np.zeros((1, len(words)), dtype=wdt)
        for j, word in enumerate(words):
            w[0, j]["content"] = word
            nfix = 0 if j == 1 else 1 + (j % 2)
            w[0, j]["nFixations"] = float(nfix) if nfix else np.empty((0, 0))
            cell = np.empty((nfix, 1), dtype=object)
            for k in range(nfix):
                cell[k, 0] = rng.standard_normal((40 + k, C))  # samples x channels
            w[0, j]["rawEEG"] = cell if nfix else np.empty((0, 0))
        sd[0, i]["word"] = w
    savemat(str(path), {"sentenceData": sd})


def write_zuco2(path, seed=1):
    """The same in MATLAB v7.3 layout: fields = (n, 1) arrays of object references."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        counter = [0]

        def put(data, empty=False):
            counter[0] += 1
            ds = refs.create_dataset(f"r{counter[0]}", data=data)
            if empty:
                ds.attrs["MATLAB_empty"] = 1
            return ds.ref

        def put_str(s):
            return put(np.array([[ord(c)] for c in s], dtype=np.uint16))

        def ref_col(items):
            return np.array([[r] for r in items], dtype=h5py.ref_dtype)

        sd = f.create_group("sentenceData")
        content, raw, word = [], [], []
        for i, s in enumerate(SENTS):
            content.append(put_str(s))
            if i == 2:
                raw.append(put(np.array([np.nan])))
                word.append(put(np.zeros(2, np.uint64), empty=True))
                continue
            raw.append(put(_eeg(rng, 700).T))  # column-major: MATLAB 105 x n shows as (n, 105)
            g = refs.create_group(f"w{i}")
            words = s.split()
            c, nf, ee = [], [], []
            for j, wd in enumerate(words):
                c.append(put_str(wd))
                nfix = 0 if j == 1 else 1
                nf.append(put(np.array([[float(nfix)]])) if nfix
                          else put(np.zeros(2, np.uint64), empty=True))
                if nfix:
                    ee.append(put(ref_col([put(rng.standard_normal((30, C)))])))
                else:
                    ee.append(put(np.zeros(2, np.uint64), empty=True))
            g.create_dataset("content", data=ref_col(c))
            g.create_dataset("nFixations", data=ref_col(nf))
            g.create_dataset("rawEEG", data=ref_col(ee))
            word.append(g.ref)
        sd.create_dataset("content", data=ref_col(content))
        sd.create_dataset("rawData", data=ref_col(raw))
        sd.create_dataset("word", data=ref_col(word))


@pytest.fixture
def zuco_dir(tmp_path):
    d1 = tmp_path / "task1-SR" / "Matlab_files"
    d2 = tmp_path / "task1-NR-2.0" / "Matlab_files"
    d1.mkdir(parents=True)
    d2.mkdir(parents=True)
    write_zuco1(d1 / "resultsZAB_SR.mat")
    write_zuco2(d2 / "resultsYAC_NR.mat")
    (d1 / "notes.mat").write_bytes(b"")  # ignored: not results<SUBJ>_<TASK>.mat
    return tmp_path


def test_zuco1_v5(zuco_dir):
    sents = read_zuco_file(zuco_dir / "task1-SR" / "Matlab_files" / "resultsZAB_SR.mat")
    assert [s.content for s in sents] == SENTS[:2]  # the sentence without EEG is skipped
    s = sents[1]
    assert s.subject == "ZAB" and s.task == "SR" and s.version == "1.0"
    assert s.eeg.shape == (C, 700)
    assert [w.content for w in s.words] == SENTS[1].split()
    assert [w.n_fixations for w in s.words][:3] == [1, 0, 1]
    assert s.words[1].fixations == []
    assert s.words[3].n_fixations == 2 and [f.shape for f in s.words[3].fixations] == \
        [(C, 40), (C, 41)]


def test_zuco2_v73(zuco_dir):
    sents = read_zuco_file(zuco_dir / "task1-NR-2.0" / "Matlab_files" / "resultsYAC_NR.mat")
    assert [s.content for s in sents] == SENTS[:2]
    s = sents[0]
    assert s.version == "2.0" and s.subject == "YAC" and s.task == "NR"
    assert s.eeg.shape == (C, 700)
    assert [w.content for w in s.words] == ["Hello", "world."]
    assert s.words[0].n_fixations == 1 and s.words[0].fixations[0].shape == (C, 30)
    assert s.words[1].n_fixations == 0 and s.words[1].fixations == []


def test_load_zuco_and_dataset(zuco_dir):
    sents = load_zuco(zuco_dir)
    assert len(sents) == 4 and {s.subject for s in sents} == {"ZAB", "YAC"}
    assert len(load_zuco(zuco_dir, tasks=["NR"])) == 2
    ds = zuco_to_dataset(sents, window_s=2.0, sfreq=100.0)
    assert ds.X.shape == (4, C, 200) and ds.sfreq == 100.0
    assert ds.corpus == SENTS[:2] and sorted(set(ds.subjects)) == [1, 2]
    assert np.isfinite(ds.X).all()
    # 600 samples at 500 Hz = 1.2 s: the rest of the 2-s window is zero padding
    i = next(k for k, s in enumerate(sents) if s.eeg.shape[1] == 600)
    assert np.all(ds.X[i, :, 125:] == 0) and ds.X[i, :, :100].std() > 0
    sub = zuco_to_dataset(sents, channels=["E1", "E5"])
    assert sub.X.shape[1] == 2 and sub.ch_names == ["E1", "E5"]


def test_zuco_errors(tmp_path):
    with pytest.raises(DataFileError, match="not a folder"):
        find_zuco_files(tmp_path / "nope")
    with pytest.raises(DataFileError, match="no results"):
        find_zuco_files(tmp_path)
    bad = tmp_path / "resultsXX_SR.mat"
    bad.write_bytes(b"not a mat file")
    with pytest.raises(DataFileError, match="cannot read"):
        read_zuco_file(bad)
