"""A step's memory figure counts its worker processes, but not a forked child that has not yet
started its own program (it shares the step's pages: counting them would double the step)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gridgov.registry.steps import _children, _counted_children, _rss_mib

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_a_worker_counts_and_a_bare_fork_does_not() -> None:
    alone = _rss_mib()
    worker = subprocess.Popen(
        [sys.executable, "-c", "x = bytearray(200 * 2**20); import time; time.sleep(30)"]
    )
    try:
        deadline = time.monotonic() + 20
        grown = alone
        while time.monotonic() < deadline and grown < alone + 150:
            time.sleep(0.1)
            grown = _rss_mib()
        assert str(worker.pid) in _children()
        assert grown >= alone + 150  # the worker's 200 MB are in the figure
        pid = os.fork()
        if pid == 0:  # the bare fork: the same program, the same pages
            time.sleep(3)
            os._exit(0)
        try:
            time.sleep(0.3)
            assert str(pid) in _children()
            assert str(pid) not in _counted_children()  # its pages are the step's own
            assert str(worker.pid) in _counted_children()
        finally:
            os.waitpid(pid, 0)
    finally:
        worker.kill()
        worker.wait()
