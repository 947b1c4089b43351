"""``python3 dev.py``, the README's two commands, on a busy machine: another apt-get holding
the package locks, the main job stopped with SIGTERM or killed outright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dev

from servers import free_port, started

ROOT = Path(dev.__file__).resolve().parent


def holding_lock(path: Path) -> subprocess.Popen:
    """Another process (as apt-get would) holding an fcntl lock on ``path``."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_the_test_command_waits_for_another_apt_get_to_finish(tmp_path, capsys):
    lock = tmp_path / "lock-frontend"
    holder = holding_lock(lock)
    waits = []

    def sleep(seconds):  # the other apt-get finishes while we wait
        waits.append(seconds)
        holder.stdin.close()
        holder.wait(timeout=10)

    try:
        assert not dev.apt_locks_free([str(lock)])
        assert dev.wait_for_apt(600, paths=[str(lock)], sleep=sleep)
    finally:
        holder.kill()
    assert waits == [2.0]
    assert "another apt-get or dpkg is running: waiting" in capsys.readouterr().out
    assert dev.apt_locks_free([str(lock)])


def test_the_wait_for_apt_is_bounded(tmp_path):
    lock = tmp_path / "lock"
    holder = holding_lock(lock)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    try:
        assert not dev.wait_for_apt(10, paths=[str(lock)], sleep=sleep, clock=lambda: now[0])
    finally:
        holder.kill()
    assert now[0] >= 10


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_main_job(tmp_path, platform_port, tool_port):
    env = dict(os.environ, PLATFORM_PORT=str(platform_port), PORT=str(tool_port),
               LTIKIT_DEV_DIR=str(tmp_path / "dev"))
    process = subprocess.Popen([sys.executable, str(ROOT / "dev.py"), "run"], env=env,
                               text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    started(process, "Open ")
    assert port_open(platform_port) and port_open(tool_port)
    return process


def ports_closed(*ports: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(port_open(p) for p in ports):
            return True
        time.sleep(0.05)
    return False


def test_sigterm_stops_both_servers(tmp_path):
    platform_port, tool_port = free_port(), free_port()
    process = start_main_job(tmp_path, platform_port, tool_port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) is not None
    assert ports_closed(platform_port, tool_port)


def test_killing_dev_py_outright_stops_both_servers(tmp_path):
    platform_port, tool_port = free_port(), free_port()
    process = start_main_job(tmp_path, platform_port, tool_port)
    process.kill()
    process.wait(timeout=15)
    assert ports_closed(platform_port, tool_port)
