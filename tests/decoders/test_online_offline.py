"""The online path (streaming filter on chunks, newest window, bundle) equals the offline one."""

from __future__ import annotations

import numpy as np

from decoders.bundle import load_bundle, save_bundle
from decoders.data import epochs_from_raw, load_raws
from decoders.estimators import make_decoder
from decoders.preprocessing import ChannelMapping, Preprocessor
from decoders.training import MOTOR21


def test_streamed_window_equals_offline_epoch_and_prediction(eegmmidb_path, tmp_path):
    pre = Preprocessor(channels=MOTOR21, sfreq=80.0)
    raw = load_raws(1, eegmmidb_path, runs=[4])[0]
    offline = pre.process_offline(raw)
    X, y, onsets = epochs_from_raw(offline, 0.5, 2.5)
    dec = make_decoder("ts_lr", len(MOTOR21), 2, 80.0, 2.0).fit(X, y)
    save_bundle(dec, tmp_path / "b", dict(channels=MOTOR21, classes=["left", "right"],
                                          preprocessing=pre.to_dict()))
    bundle = load_bundle(tmp_path / "b")

    # the "device" sends all 64 channels in its own order, renamed; map two of them explicitly
    data = raw.get_data().T[:, ::-1]
    names = list(raw.ch_names)[::-1]
    names[names.index("C3")] = "EXG_C3"
    filt = bundle.streaming_filter(160.0, names, ChannelMapping({"C3": "EXG_C3"}))
    out, t_end = [], onsets[3] + 2.5
    n_in = int(round(t_end * 160.0)) + 200
    for i in range(0, n_in, 13):  # odd chunk size
        out.append(filt.process(data[i:min(i + 13, n_in)]))
    online = np.concatenate(out)
    end = int(round(t_end * 80.0))
    window = online[end - 160:end].T
    np.testing.assert_allclose(window, X[3], atol=1e-12)
    np.testing.assert_allclose(bundle.predict_proba(window), dec.predict_proba(X[3:4])[0],
                               atol=1e-9)
