"""Acquisition review 12: an ``ExG`` stream (the LSL type of many biosignal amplifiers) is EEG
in volts, live and read back alike.

The live LSL source mapped channel types with its own table, which lacked ``ExG``, ``Ref``,
``Marker`` ...: an ``ExG`` stream came in as MISC and was not converted from microvolts (values
10^6 too large for a decoder trained in volts), while the file reader mapped ``ExG`` to EEG.
``read_file`` and ``load_recording`` also picked and typed a stream as EEG only for type
``EEG``. One mapping (``acquisition.stream_info.mne_channel_type``) now serves all of them.

Repeated channel labels were made unique by three copies of one loop, which gave ``C3, C3-1,
C3-1`` for ``C3, C3, C3-1`` (MNE refuses the file; the decoder's channel mapping is ambiguous).
``unique_channel_names`` now serves the three.

Each failed reconnection attempt of the LSL source listed the visible streams for 1 s, only to
word its error: with the default 0.5 s attempts, a device that came back waited up to twice as
long to be picked up.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from acquisition.files import read_file
from acquisition.lsl_env import import_pylsl
from acquisition.lsl_source import LSLSource
from acquisition.stream_info import unique_channel_names
from acquisition.xdf_writer import XDFWriter
from bci_app.errors import StreamNotFoundError
from bci_app.recording import load_recording
from tests.helpers.processes import wait_until

FS = 250.0
N = 100


def _info(pylsl, name, per_channel):
    info = pylsl.StreamInfo(name, "ExG", 3, FS, pylsl.cf_double64, name)
    if per_channel:
        chans = info.desc().append_child("channels")
        for label, typ in (("C3", "ExG"), ("C4", "ExG"), ("TRG", "Trigger")):
            c = chans.append_child("channel")
            c.append_child_value("label", label)
            c.append_child_value("unit", "microvolts")
            c.append_child_value("type", typ)
    return info


@pytest.mark.parametrize(("per_channel", "types"), [
    (True, ("eeg", "eeg", "stim")),  # channels typed ExG / Trigger
    (False, ("eeg", "eeg", "eeg")),  # only the stream says ExG
])
def test_an_exg_stream_is_eeg_in_volts_live_and_read_back(stream_name, tmp_path, per_channel,
                                                          types):
    pylsl = import_pylsl()
    info = _info(pylsl, stream_name, per_channel)
    values = np.tile([5.0, -5.0, 1.0], (N, 1))
    stamps = pylsl.local_clock() + np.arange(N) / FS
    outlet = pylsl.StreamOutlet(info)
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    try:
        outlet.push_chunk(values.tolist(), list(stamps))
        wait_until(lambda: (src.acquire(), src.n_samples)[1] >= N, 10, what="samples")
        live = src.buffer.since(0)
        assert src.info.ch_types == types
        assert src.info.units[:2] == ("V", "V")
        np.testing.assert_allclose(live.data[:, :2], values[:, :2] * 1e-6)
    finally:
        src.disconnect()
        del outlet
    # the same stream in an XDF file (what LabRecorder would write) is read the same way
    path = tmp_path / "exg.xdf"
    with XDFWriter(path) as w:
        w.add_stream(1, ET.fromstring(info.as_xml()))
        w.write_samples(1, stamps, values)
    rec = read_file(path)
    assert rec.info.ch_types == types
    np.testing.assert_allclose(rec.data[:, :2], values[:, :2] * 1e-6)
    raw = load_recording(path)
    assert raw.get_channel_types() == list(types)
    np.testing.assert_allclose(raw.get_data()[:2].T, values[:, :2] * 1e-6)


@pytest.mark.parametrize(("given", "expected"), [
    (["C3", "C3", "C3-1"], ["C3", "C3-2", "C3-1"]),
    (["C3", "C3", "C3"], ["C3", "C3-1", "C3-2"]),
    (["A-1", "A", "A"], ["A-1", "A", "A-2"]),
    ([" Fz ", "", ""], ["Fz", "ch", "ch-1"]),
])
def test_unique_channel_names(given, expected):
    assert unique_channel_names(given) == expected


def test_repeated_labels_are_unique_live_and_read_back(stream_name, tmp_path):
    pylsl = import_pylsl()
    info = pylsl.StreamInfo(stream_name, "EEG", 3, FS, pylsl.cf_double64, stream_name)
    chans = info.desc().append_child("channels")
    for label in ("C3", "C3", "C3-1"):
        c = chans.append_child("channel")
        c.append_child_value("label", label)
        c.append_child_value("unit", "microvolts")
        c.append_child_value("type", "EEG")
    outlet = pylsl.StreamOutlet(info)
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    try:
        assert src.info.ch_names == ("C3", "C3-2", "C3-1")
    finally:
        src.disconnect()
        del outlet
    path = tmp_path / "dup.xdf"
    stamps = 100.0 + np.arange(N) / FS
    with XDFWriter(path) as w:
        w.add_stream(1, ET.fromstring(info.as_xml()))
        w.write_samples(1, stamps, np.zeros((N, 3)))
    assert read_file(path).info.ch_names == ("C3", "C3-2", "C3-1")
    assert load_recording(path).ch_names == ["C3", "C3-2", "C3-1"]


def test_a_reconnection_attempt_does_not_spend_a_second_listing_streams(stream_name):
    pylsl = import_pylsl()
    outlet = pylsl.StreamOutlet(_info(pylsl, stream_name, True))
    src = LSLSource(stream_name)
    src.connect(timeout=10, acquisition=False)
    try:
        del outlet  # the device goes away
        time.sleep(0.3)
        t0 = time.monotonic()
        with pytest.raises(StreamNotFoundError, match="within 0.3 s") as err:
            src._reopen(0.3)  # what the acquisition thread calls, every reconnect_timeout
        elapsed = time.monotonic() - t0
        assert "Visible streams" not in str(err.value)
        assert elapsed < 1.0  # the listing alone took 1 s
    finally:
        src.disconnect()
    # a first connection still names what is visible
    with pytest.raises(StreamNotFoundError, match="Visible streams"):
        LSLSource(stream_name + "-absent").connect(timeout=0.2)
