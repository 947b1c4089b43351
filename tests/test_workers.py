"""Several worker processes share one database: a launch is accepted once, by one of them,
whether they are Flask workers or uvicorn workers of the FastAPI adapter."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from ltikit.storage import upgrade

HERE = Path(__file__).parent
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tool.example.edu"}


@pytest.fixture(params=["flask", "fastapi"])
def workers(request, tmp_path, database_url):
    """Three worker processes sharing one database (SQLite file, then PostgreSQL): Flask
    (serve_tool.py), or FastAPI under uvicorn (serve_fastapi_tool.py)."""
    # Deployments migrate once before starting workers; the workers then find the schema.
    upgrade(database_url)
    script = "serve_tool.py" if request.param == "flask" else "serve_fastapi_tool.py"
    procs, ports = [], []
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(HERE / script), str(tmp_path),
                                 database_url],
                                stdout=subprocess.PIPE, text=True, cwd=HERE)
        procs.append(proc)
        ports.append(int(proc.stdout.readline()))
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    for base in bases:  # uvicorn prints its port before it listens
        for _ in range(100):
            try:
                requests.get(base + "/nothing", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
    yield bases
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def send(base, launch):
    return requests.post(base + "/launch", data=launch.body,
                         headers=launch.headers | PROXY_HEADERS, timeout=30)


def test_a_replay_to_another_worker_is_refused(workers, signed):
    launch = signed()
    assert send(workers[0], launch).status_code == 200
    second = send(workers[1], launch)
    assert second.status_code == 401
    assert "replayed_nonce" in second.text


def test_simultaneous_copies_of_one_launch_succeed_exactly_once(workers, signed):
    for _ in range(5):
        launch = signed()
        with ThreadPoolExecutor(max_workers=9) as pool:
            statuses = sorted(pool.map(lambda i, launch=launch: send(workers[i % 3], launch).status_code,
                                       range(9)))
        assert statuses == [200] + [401] * 8


def test_a_launch_in_one_worker_is_known_to_the_others(workers, signed):
    response = send(workers[0], signed())
    assert response.status_code == 200
    token = response.cookies.get("ltikit_launch") or \
        response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    page = requests.get(workers[2] + "/page", headers={"X-LTIKit-Launch": token}, timeout=30)
    assert page.status_code == 200
    assert page.text.startswith("page for 535fa085")
