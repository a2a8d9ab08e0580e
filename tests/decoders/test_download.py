"""Fetching EEGMMIDB for a real user (``bci-app train --download``, the wizard's pretraining).

There is no internet here, so PhysioNet is stood in for by a real HTTP server on loopback that
serves the shared copy in PhysioNet's layout (``.../files/eegmmidb/1.0.0/S001/S001R04.edf``):
MNE's downloader (pooch) fetches over HTTP and checks each file against MNE's registry of
hashes, exactly as from physionet.org.
"""

from __future__ import annotations

import functools
import json
import http.server
import threading

import pytest

from bci_app.cli import main
from bci_app.errors import DataFileError
from decoders.data import EEGMMIDB_URL_ENV, download_eegmmidb, missing_eegmmidb


@pytest.fixture
def mirror(eegmmidb_path):
    """(base_url, requests served, stop) of a loopback HTTP mirror of the shared EEGMMIDB."""
    served: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            served.append(self.path)

    handler = functools.partial(Handler, directory=str(eegmmidb_path / "MNE-eegbci-data"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/files/eegmmidb/1.0.0/"

    def stop():  # closed, not only stopped: a request is refused at once (no 30 s timeouts)
        server.shutdown()
        server.server_close()

    yield url, served, stop
    stop()


def test_download_fetches_missing_files_checked_by_hash_and_then_touches_no_network(
        mirror, eegmmidb_path, tmp_path):
    url, served, stop = mirror
    dest = tmp_path / "eegmmidb"
    assert missing_eegmmidb([1], dest, runs=[4]) == [(1, 4)]
    assert download_eegmmidb([1], dest, runs=[4], base_url=url) == 1
    rel = "MNE-eegbci-data/files/eegmmidb/1.0.0/S001/S001R04.edf"
    assert (dest / rel).read_bytes() == (eegmmidb_path / rel).read_bytes()
    assert any(p.endswith("S001R04.edf") for p in served)
    stop()  # nothing missing: no request (the server is gone, so a request would fail)
    assert download_eegmmidb([1], dest, runs=[4], base_url=url) == 0


def test_a_failed_download_names_the_problem_and_the_fix(mirror, tmp_path):
    url, _served, stop = mirror
    stop()
    with pytest.raises(DataFileError, match="could not download EEGMMIDB subjects \\[2\\].*"
                                            "check the internet connection"):
        download_eegmmidb([2], tmp_path / "eegmmidb", runs=[4], base_url=url)


def test_train_download_fetches_then_trains(mirror, tmp_path, monkeypatch, capsys):
    """The command the calibration's channel check advises (with --download) on a computer
    without the data: it fetches the subjects' runs, then trains and saves the bundle."""
    url, served, _stop = mirror
    monkeypatch.setenv(EEGMMIDB_URL_ENV, url)
    dest = tmp_path / "eegmmidb"
    rc = main(["train", "--subjects", "1-2", "--channels", "C3,Cz,C4", "--model", "csp_lda",
               "--download", "--data-dir", str(dest), "--out", str(tmp_path / "bundle"),
               "--json"])
    assert rc == 0
    out, err = capsys.readouterr()
    assert "downloaded 6 EEGMMIDB files" in err  # not in the JSON on stdout
    assert json.loads(out)["subjects"] == [1, 2]
    assert missing_eegmmidb([1, 2], dest) == []
    assert (tmp_path / "bundle" / "config.json").is_file()
    assert main(["train", "--subjects", "3", "--channels", "C3,Cz,C4", "--model", "csp_lda",
                 "--data-dir", str(dest), "--out", str(tmp_path / "b2")]) == 2
    assert "add --download" in capsys.readouterr().err  # without it: the fix is named
