"""`registry.frames.prefetched`: items made a step ahead by a thread, in order, errors and early
closes handed across."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from gridgov.registry.frames import prefetched


def test_items_come_in_order_made_by_another_thread() -> None:
    made_in: set[int] = set()

    def items() -> Iterator[int]:
        for i in range(50):
            made_in.add(threading.get_ident())
            yield i

    assert list(prefetched(items(), depth=3)) == list(range(50))
    assert made_in and threading.get_ident() not in made_in


def test_an_error_in_the_producer_is_raised_in_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad record kind 'x y'")

    got: list[int] = []
    with pytest.raises(ValueError, match="bad record kind"):
        for item in prefetched(items()):
            got.append(item)
    assert got == [1, 2]


def test_closing_early_stops_the_producer_and_closes_its_source() -> None:
    closed = threading.Event()
    made: list[int] = []

    def items() -> Iterator[int]:
        try:
            for i in range(1_000_000):
                made.append(i)
                yield i
        finally:
            closed.set()

    stream = prefetched(items(), depth=1)
    assert next(stream) == 0
    assert next(stream) == 1
    stream.close()  # as a consumer that stops after two frames
    assert closed.is_set()  # the source's cleanup ran (a COPY is ended there)
    assert len(made) <= 4  # at most a step or two ahead, never the rest
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_nothing_starts_until_the_first_item_is_asked_for() -> None:
    started = threading.Event()

    def items() -> Iterator[int]:
        started.set()
        yield 1

    stream = prefetched(items())
    assert not started.is_set()
    assert list(stream) == [1]
