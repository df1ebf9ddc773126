"""The lab itself: no clobbering, and nothing left behind after an interrupted demo."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from announcer.lab.lab import Lab, LabError
from announcer.lab.netns import existing_namespaces

from .conftest import ALL


def test_refuses_to_clobber_a_running_lab(lab):
    other = Lab(Path(tempfile.mkdtemp(prefix="announcer-lab-test-")))
    try:
        with pytest.raises(LabError, match="still running"):
            other.up()
    finally:
        shutil.rmtree(other.workdir, ignore_errors=True)
    assert set(lab.fib.next_hops()) == lab.fib.addresses(ALL)  # the running lab is untouched


@pytest.mark.usefixtures("lab_factory")  # its checks (root, tools) apply; the demo builds a lab
def test_interrupted_demo_leaves_nothing_behind():
    workdir = Path(tempfile.mkdtemp(prefix="announcer-lab-test-"))
    demo = subprocess.Popen(
        [sys.executable, "-m", "announcer", "lab", "demo", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # wait until the lab is really up
            if "Client traffic" in line:
                break
        demo.send_signal(signal.SIGINT)
        demo.wait(30)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        if demo.stdout is not None:
            demo.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)
    deadline = time.monotonic() + 5
    while existing_namespaces() & {"r1", "lb1", "lb2", "lb3", "client", "prom"}:
        assert time.monotonic() < deadline, existing_namespaces()
        time.sleep(0.1)
    leftovers = subprocess.run(
        ["pgrep", "-f", str(workdir)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert not leftovers, leftovers
