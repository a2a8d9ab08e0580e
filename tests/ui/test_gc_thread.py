"""Qt objects freed by Python's cycle collector are destroyed on the GUI thread.

The automatic collector runs in whichever thread allocates. A worker thread (decoder, LSL
reader, training job) that triggers it would destroy a leftover widget's C++ object off the GUI
thread, which Qt forbids: the test suite hung in Qt's mutexes that way and a probe segfaulted.
"""

from __future__ import annotations

import gc
import threading

from PySide6 import QtCore


def test_widget_in_a_reference_cycle_is_not_destroyed_by_a_worker_thread(gui):
    import pyqtgraph as pg

    from ui.app import collect_garbage_on_gui_thread, create_app

    assert create_app() is gui  # what the app runs at start-up
    collector = collect_garbage_on_gui_thread()
    assert not gc.isenabled()

    where: list[str] = []
    gc.collect()  # a fresh young generation: the cycle below is what a collection would free
    plot = pg.PlotWidget()  # with its context menus, the widgets seen in the hang
    plot.self_ref = plot  # a reference cycle: only the cycle collector can free it
    plot.destroyed.connect(lambda *_: where.append(threading.current_thread().name),
                           QtCore.Qt.ConnectionType.DirectConnection)
    del plot

    def decoder_like_work():  # allocation enough for many automatic collections
        for _ in range(20):
            junk = [[i] for i in range(20_000)]
            junk.append(junk)  # cycles too, as numpy/torch code makes

    worker = threading.Thread(target=decoder_like_work, name="worker")
    worker.start()
    worker.join()
    assert where == [], f"a worker thread destroyed a Qt widget: {where}"

    gc.collect()  # what the collector's timer does on the GUI thread when its thresholds pass
    assert where == ["MainThread"]
    assert collector.timer.isActive()
