"""RingBuffer: wrap-around, overrun accounting, copies, and concurrent readers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition.ring_buffer import RingBuffer


def _chunk(start: int, n: int, n_ch: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(start, start + n, dtype=np.float64)
    data = idx[:, None] * 10 + np.arange(n_ch)[None, :]
    return data, idx / 100.0


def test_latest_and_since_basic():
    rb = RingBuffer(8, 2)
    assert rb.counter == 0 and len(rb) == 0
    assert rb.latest(4).n_samples == 0
    rb.write(*_chunk(0, 5, 2))
    c = rb.latest(3)
    np.testing.assert_array_equal(c.data[:, 0], [20, 30, 40])
    np.testing.assert_array_equal(c.timestamps, [0.02, 0.03, 0.04])
    assert (c.start, c.stop, c.lost) == (2, 5, 0)
    c = rb.since(1)
    assert (c.start, c.stop, c.lost) == (1, 5, 0)
    np.testing.assert_array_equal(c.data[:, 1], [11, 21, 31, 41])


def test_reads_are_copies():
    rb = RingBuffer(4, 1)
    rb.write(np.ones((4, 1)), np.arange(4.0))
    c = rb.latest(4)
    c.data[:] = -1
    assert np.all(rb.latest(4).data == 1)


def test_overrun_is_reported_to_the_reader_that_fell_behind():
    rb = RingBuffer(10, 1)
    rb.write(*_chunk(0, 25, 1))
    c = rb.since(3)
    assert c.lost == 12  # samples 3..14 were overwritten; 15..24 are held
    assert (c.start, c.stop) == (15, 25)
    np.testing.assert_array_equal(c.data[:, 0], np.arange(15, 25) * 10)


def test_chunk_longer_than_capacity_keeps_newest_and_counts_all():
    rb = RingBuffer(5, 1)
    rb.write(*_chunk(0, 12, 1))
    assert rb.counter == 12
    np.testing.assert_array_equal(rb.latest(5).timestamps, np.arange(7, 12) / 100.0)


def test_max_samples_pages_through():
    rb = RingBuffer(100, 1)
    rb.write(*_chunk(0, 50, 1))
    k, seen = 0, []
    while k < rb.counter:
        c = rb.since(k, max_samples=7)
        seen.extend(c.timestamps.tolist())
        k = c.stop
    np.testing.assert_allclose(seen, np.arange(50) / 100.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda rb: rb.write(np.zeros((3, 5)), np.zeros(3)), r"shape \(n_samples, 2\)"),
        (lambda rb: rb.write(np.zeros((3, 2)), np.zeros(4)), "3 timestamps"),
        (lambda rb: rb.latest(11), "at most 10"),
        (lambda rb: rb.since(-1), "k >= 0"),
        (lambda rb: rb.since(99), "ahead of the buffer"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, match):
    rb = RingBuffer(10, 2)
    with pytest.raises(ValueError, match=match):
        call(rb)


def test_constructor_validates():
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0, 2)
    with pytest.raises(ValueError, match="n_channels"):
        RingBuffer(5, 0)


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 40),
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=30),
    reader_every=st.integers(1, 5),
)
def test_property_wraparound_and_overrun_accounting(capacity, sizes, reader_every):
    """Against a reference list: every sample a reader gets is the right one, in order, and
    every sample it misses is counted in ``lost`` exactly once."""
    rb = RingBuffer(capacity, 2)
    written = 0
    k = 0
    got: list[float] = []
    lost_total = 0
    for i, n in enumerate(sizes):
        rb.write(*_chunk(written, n, 2))
        written += n
        assert rb.counter == written
        if i % reader_every == 0:
            c = rb.since(k)
            got.extend(c.timestamps.tolist())
            lost_total += c.lost
            assert c.stop == written
            assert c.n_samples <= capacity
            k = c.stop
        latest = rb.latest(min(capacity, 3))
        expect = np.arange(max(0, written - min(capacity, 3)), written) / 100.0
        np.testing.assert_allclose(latest.timestamps, expect)
    c = rb.since(k)
    got.extend(c.timestamps.tolist())
    lost_total += c.lost
    # what was received plus what was reported lost is everything, once, in order
    assert len(got) + lost_total == written
    assert got == sorted(got)
    assert len(set(got)) == len(got)
    if got:
        assert got[-1] == (written - 1) / 100.0


def test_concurrent_writer_and_readers_never_see_torn_windows():
    """One writer thread, three reader threads: each window is contiguous and internally
    consistent (row value = sequence number encoded in every channel)."""
    n_ch = 64
    rb = RingBuffer(2000, n_ch)
    total = 200_000
    stop = threading.Event()
    errors: list[str] = []

    def writer():
        i = 0
        rng = np.random.default_rng(0)
        while i < total:
            n = int(rng.integers(16, 65))
            n = min(n, total - i)
            idx = np.arange(i, i + n, dtype=np.float64)
            rb.write(np.repeat(idx[:, None], n_ch, axis=1), idx)
            i += n
        stop.set()

    def latest_reader():
        while not stop.is_set():
            c = rb.latest(500)
            if c.n_samples < 2:
                continue
            d = c.data
            if not (np.all(d == d[:, :1]) and np.all(np.diff(d[:, 0]) == 1)
                    and np.array_equal(d[:, 0], c.timestamps) and d[-1, 0] == c.stop - 1):
                errors.append(f"torn latest window at {c.start}")
                return

    def since_reader():
        k, seen, lost = 0, 0, 0
        while True:
            done = stop.is_set()
            c = rb.since(k)
            if c.n_samples:
                d = c.data[:, 0]
                if not (d[0] == c.start and np.all(np.diff(d) == 1)
                        and np.all(c.data == c.data[:, :1])):
                    errors.append(f"torn since-chunk at {c.start}")
                    return
            seen += c.n_samples
            lost += c.lost
            k = c.stop
            if done and k == rb.counter:
                break
        if seen + lost != total:
            errors.append(f"since reader: {seen} seen + {lost} lost != {total}")

    threads = [threading.Thread(target=f) for f in (latest_reader, latest_reader, since_reader)]
    for t in threads:
        t.start()
    w = threading.Thread(target=writer)
    w.start()
    w.join(60)
    for t in threads:
        t.join(60)
    assert not w.is_alive() and not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert rb.counter == total
