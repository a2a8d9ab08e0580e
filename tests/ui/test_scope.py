"""Signal scope: decimation, channel count, markers, display filters, channel set-up, flags."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ui.fakes import ScriptedSource, SimulatedSource, assert_flags_shown, wait_streaming
from ui.scope import DisplayFilter, ScopeWidget, channel_flags, minmax_decimate, montage_order


# --------------------------------------------------------------------------- pure functions
@pytest.mark.parametrize("n, bins", [(10_000, 997), (10_000, 1000), (2_501, 800), (100, 80), (640, 1)])
def test_minmax_decimate_keeps_every_peak(n, bins):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((n, 3)).astype(np.float32)
    data[n // 3, 0] = 50.0   # a one-sample spike must survive
    data[n - 1, 1] = -40.0   # also in the last (partial) bin
    idx, out = minmax_decimate(data, bins)
    assert out.shape[0] <= max(2 * bins, n) and out.shape[0] == len(idx)
    np.testing.assert_array_equal(out.max(0), data.max(0))
    np.testing.assert_array_equal(out.min(0), data.min(0))
    assert np.all(np.diff(idx) >= 0) and idx[0] == 0 and idx[-1] <= n - 1
    if n > 2 * bins:  # each output pair is the min and max of its bin
        b = -(-n // bins)
        k = min(5, n // b - 1)
        np.testing.assert_array_equal(out[2 * k], data[k * b:(k + 1) * b].min(0))
        np.testing.assert_array_equal(out[2 * k + 1], data[k * b:(k + 1) * b].max(0))


def test_minmax_decimate_rejects_bad_input():
    with pytest.raises(ValueError, match="n_samples, n_channels"):
        minmax_decimate(np.zeros(10), 4)
    with pytest.raises(ValueError, match="n_bins"):
        minmax_decimate(np.zeros((10, 2)), 0)


def test_rasterize_spans():
    from ui.scope import rasterize_spans

    cov = rasterize_spans(np.array([0, 2, 5]), np.array([1, 2, 9]), np.array([0, 0, 3]), 10, 4)
    assert cov.shape == (4, 10)  # (width, height), column-major
    assert cov[0].tolist() == [True, True, True] + [False] * 7
    assert not cov[1].any() and not cov[2].any()
    assert np.flatnonzero(cov[3]).tolist() == [5, 6, 7, 8, 9]


def test_raster_and_curves_show_the_same_lanes(scripted):
    scope, src, ts = scripted
    scope.set_channel_visible(1, False)
    lanes = {}
    for renderer in ("raster", "curves"):
        scope.renderer = renderer
        scope.refresh()
        assert scope.render_mode == renderer
        if renderer == "raster":
            from ui.scope import _BACKGROUND

            img = scope._raster.image  # (width, height), row 0 at the bottom of the view
            y0, y1 = scope._yrange
            rows = np.flatnonzero((img != _BACKGROUND).any(axis=0))
            yv = y0 + (rows + 0.5) * (y1 - y0) / img.shape[1]
            lanes[renderer] = sorted({int(np.round(-v)) for v in yv})
        else:
            y = scope._curves["normal"].getData()[1]
            lanes[renderer] = sorted({int(np.round(-v)) for v in y[np.isfinite(y)]})
    assert lanes["raster"] == lanes["curves"] == [0, 1, 2]  # C3, C4, Pz; Cz hidden


def test_display_filter_validation_and_flags():
    with pytest.raises(ValueError, match="notch"):
        DisplayFilter(notch=55)
    with pytest.raises(ValueError, match="bandpass"):
        DisplayFilter(bandpass="2-3 Hz")
    assert DisplayFilter().sos(250.0) is None
    assert DisplayFilter(50, "1–40 Hz").sos(250.0).shape[1] == 6
    data = np.zeros((250, 3))
    data[:, 1] = np.sin(np.arange(250))  # alive
    data[:, 2] = 190_000.0
    assert channel_flags(data, np.array([True, True, True])) == {0: "flat", 2: "railed"}
    assert channel_flags(data, np.array([False, True, False])) == {}


def test_montage_order_front_to_back():
    order = montage_order(["O1", "Cz", "Fp1", "X9"], "10-20")
    assert order[0] == 2 and order[-1] == 3 and order.index(1) < order.index(0)


# --------------------------------------------------------------------------- widget
SF = 250.0
@pytest.fixture
def scripted(gui):
    """A scope on a ScriptedSource in manual mode with 500 samples of known data."""
    src = ScriptedSource(("C3", "Cz", "C4", "Pz"), sfreq=SF)
    src.connect(acquisition=False)
    t0 = 1000.0
    n = 1000
    ts = t0 + np.arange(n) / SF
    data = np.sin(2 * np.pi * 50 * ts)[:, None] * 20e-6 + np.arange(4)[None, :] * 1e-6
    src.push(data, ts)
    src.acquire()
    scope = ScopeWidget()
    scope.resize(900, 500)
    scope.show()
    scope.set_window(10)
    scope.set_source(src)
    yield scope, src, ts
    scope.close()
    src.disconnect()


def test_scope_shows_every_channel_of_the_source(make_window, qtbot):
    src = SimulatedSource(n_channels=12, sfreq=250.0)
    win = make_window(source=src)
    wait_streaming(qtbot, win)
    qtbot.waitUntil(lambda: win.scope.frame_count > 3, timeout=5000)
    assert win.scope.n_channels == 12
    assert win.scope.visible_channels == list(range(12))
    ticks = win.scope.plot.getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == list(src.info.ch_names)
    assert win.channels.table.rowCount() == 12


def test_scope_on_synthetic_board_shows_its_16_channels(make_window, qtbot):
    win = make_window("synthetic")
    wait_streaming(qtbot, win)
    qtbot.waitUntil(lambda: win.scope.paint_count > 3, timeout=5000)
    assert win.scope.n_channels == win.source.info.n_channels == 16
    assert len(win.scope.visible_channels) == 16


def test_markers_drawn_at_their_sample(scripted):
    scope, src, ts = scripted
    k = 123
    src.markers.add(ts[k], "left", source="user")
    src.markers.add(ts[400] + 0.004, "right", source="protocol")  # = sample 401 (4 ms apart)
    src.markers.add(ts[0] - 50.0, "old")  # outside the window: not drawn
    scope.refresh()
    pos = dict(scope.marker_positions())
    assert set(pos) == {"left", "right"}
    n = len(ts)
    assert pos["left"] == pytest.approx((k - (n - 1)) / SF, abs=1e-9)
    assert pos["right"] == pytest.approx((401 - (n - 1)) / SF, abs=1e-6)
    # drawn: a visible line at that x with its label
    line, text = scope._marker_items[0]
    assert line.isVisible() and line.value() == pytest.approx(pos["left"])
    assert text.toPlainText() == "left"
    # sweep mode: x is the sample's position in the 10 s (2500-sample) sweep
    scope.set_mode("sweep")
    scope.refresh()
    pos = dict(scope.marker_positions())
    assert pos["left"] == pytest.approx((k % 2500) / SF, abs=1e-9)
    assert scope._cursor.isVisible() and scope._cursor.value() == pytest.approx(((n - 1) % 2500) / SF)


def test_markers_follow_new_data(scripted):
    scope, src, ts = scripted
    src.markers.add(ts[-1], "now", source="user")
    scope.refresh()
    assert dict(scope.marker_positions())["now"] == pytest.approx(0.0)
    more = ts[-1] + np.arange(1, 251) / SF
    src.push(np.zeros((250, 4)), more)
    src.acquire()
    scope.refresh()
    assert dict(scope.marker_positions())["now"] == pytest.approx(-1.0)  # scrolled 1 s left


def test_display_filter_changes_display_not_ring_buffer(scripted):
    scope, src, ts = scripted
    before_data = src.buffer._data.copy()
    before_ts = src.buffer._ts.copy()
    scope.refresh()
    raw = scope.displayed_data().copy()
    np.testing.assert_allclose(raw, src.buffer.latest(1000).data * 1e6, rtol=1e-5, atol=1e-4)
    scope.set_filter(notch=50, bandpass="1–40 Hz")
    scope.refresh()
    filtered = scope.displayed_data()
    assert np.std(filtered[-200:, 0]) < 0.2 * np.std(raw[-200:, 0])  # 50 Hz removed on screen
    np.testing.assert_array_equal(src.buffer._data, before_data)  # ...but not in the buffer
    np.testing.assert_array_equal(src.buffer._ts, before_ts)
    # new chunks are filtered incrementally, the buffer still holds the raw samples
    more_ts = ts[-1] + np.arange(1, 51) / SF
    chunk = np.sin(2 * np.pi * 50 * more_ts)[:, None] * 20e-6 * np.ones((1, 4))
    src.push(chunk, more_ts)
    src.acquire()
    scope.refresh()
    np.testing.assert_array_equal(src.buffer.latest(50).data, chunk)
    scope.set_filter(0, "off")
    scope.refresh()
    np.testing.assert_allclose(scope.displayed_data()[-50:], chunk * 1e6, rtol=1e-5, atol=1e-4)


def test_hide_bad_and_per_channel_scale(scripted):
    scope, src, ts = scripted
    scope.renderer = "curves"  # this test reads the curve items' data
    scope.refresh()
    scope.set_channel_visible(1, False)
    scope.set_channel_bad(3, True)
    scope.set_channel_scale(0, 5.0)
    scope.refresh()
    assert scope.visible_channels == [0, 2, 3]
    ticks = [t[1] for t in scope.plot.getAxis("left")._tickLevels[0]]
    assert ticks == ["C3", "C4", "Pz (bad)"]
    assert scope.drawn == {"normal": [0, 2], "bad": [3]}
    x, y = scope._curves["bad"].getData()
    assert np.isfinite(y).sum() > 0  # the bad channel is drawn in the grey "bad" curve
    x, y = scope._curves["normal"].getData()
    y = y[np.isfinite(y)]
    # channel 0 at 5 µV/div (20 µV sine = 4 div): clipped to its own row (±0.5 div); at the
    # global 100 µV/div it would stay within ±0.3 div
    assert y.max() == pytest.approx(0.5, abs=1e-6)
    state = scope.channel_state()
    assert state == {"hidden": ["Cz"], "bad": ["Pz"], "scales": {"C3": 5.0}}


def test_flat_and_railed_channels_highlighted(make_window, qtbot):
    """Waits for what it checks (flags are looked for every 0.25 s, and the start-up layout may
    still squeeze the scope) and reads the labels by row: it read the tick list by index as soon
    as the flags appeared, which failed while a squeezed scope labelled every 2nd row only. At
    the window's size every channel is named."""
    src = SimulatedSource(n_channels=6, sfreq=250.0, flat=(2,), railed=(4,))
    win = make_window(source=src)
    wait_streaming(qtbot, win)
    qtbot.waitUntil(lambda: assert_flags_shown(win.scope, {2: "flat", 4: "railed"},
                                               every_row_named=True), timeout=5000)


def test_window_length_and_many_channels(make_window, qtbot):
    src = SimulatedSource(n_channels=64, sfreq=1000.0, prefill_s=31.0)
    win = make_window(source=src)
    win.resize(1500, 950)  # a plot wider than 500 px: 1 s of 1 kHz is < 2 samples per pixel
    wait_streaming(qtbot, win)
    win.scope.set_window(30)
    n0 = win.scope.frame_count  # frames drawn before the change do not count
    qtbot.waitUntil(lambda: win.scope.frame_count > n0 + 5 and win.scope.render_mode == "raster",
                    timeout=10000)
    assert win.scope._wn == 30_000
    # 30 samples per pixel column: drawn as a pixel raster of min/max spans
    assert win.scope.render_mode == "raster" and win.scope.drawn["normal"] == list(range(64))
    img = win.scope._raster.image  # (columns, rows): one column per bin of ceil(30000 / width) samples
    vb = win.scope.plot.getViewBox()
    assert img.shape[1] == int(vb.height()) and int(vb.width()) * 0.9 <= img.shape[0] <= int(vb.width()) + 2
    from ui.scope import _BACKGROUND

    assert (img != _BACKGROUND).mean() > 0.05
    win.scope.set_window(1)
    win.scope.refresh()
    assert win.scope._wn == 1000 and win.scope.render_mode == "curves"
    x, y = win.scope._curves["normal"].getData()
    assert 64 * 1000 <= len(x) <= 64 * 1001  # 1000 samples < 2 per pixel: drawn as curves


def test_incremental_strip_matches_a_full_render(scripted):
    """Scroll mode renders only new bins; the picture equals a render from scratch."""
    from ui.scope import _BACKGROUND

    scope, src, ts = scripted
    scope.renderer = "raster"
    scope.refresh()
    rng = np.random.default_rng(3)
    t_last = ts[-1]
    for n in (7, 1, 33, 120, 5, 64):  # chunks of odd sizes, as a device delivers them
        t = t_last + np.arange(1, n + 1) / SF
        t_last = t[-1]
        data = np.sin(2 * np.pi * 50 * t)[:, None] * 20e-6 + rng.normal(0, 3e-6, (n, 4))
        src.push(data, t)
        src.acquire()
        scope.refresh()
    assert scope.render_mode == "raster" and scope._strip is not None
    incremental = scope._raster.image.copy()
    dc = scope._strip["dc"].copy()
    scope._strip = None  # forget everything: the next frame renders every bin again
    scope.refresh()
    np.testing.assert_allclose(scope._strip["dc"], dc, atol=0.05 * scope.scale_uv)
    full = scope._raster.image
    assert full.shape == incremental.shape
    assert (full != _BACKGROUND).sum() > 1000
    assert (full != incremental).mean() < 0.01  # at most a baseline rounding apart


def test_sweep_strip_pieces_leave_a_gap_after_the_cursor(scripted):
    scope, src, ts = scripted
    t = ts[-1] + np.arange(1, 2001) / SF  # 3000 samples in all: the 2500-sample sweep wrapped
    src.push(np.sin(2 * np.pi * 7 * t)[:, None] * 20e-6 * np.ones((1, 4)), t)
    src.acquire()
    scope.set_mode("sweep")
    scope.renderer = "raster"
    scope.refresh()
    assert scope.render_mode == "raster"
    cursor = scope._cursor.value()
    assert cursor == pytest.approx(((3000 - 1) % 2500) / SF)
    pieces = scope._raster._pieces
    xs = sorted((xl, xr) for _, _, xl, xr in pieces)
    # the current pass ends at the cursor, the previous pass resumes a little after it
    assert any(abs(xr - (cursor + 1 / SF)) < 0.05 for _, xr in xs)
    after = [xl for xl, _ in xs if xl > cursor]
    assert after and 0 < min(after) - cursor < 0.05 * scope.window_s
    assert min(xl for xl, _ in xs) >= -0.05 and max(xr for _, xr in xs) <= scope.window_s + 0.05
