"""The Flask adapter on gunicorn against the FastAPI adapter (ltikit.starlette) on uvicorn,
side by side in one run: the same tool, the same worker count, the same database.

    .venv/bin/python bench/adapters.py [--workers 2] [--clients 8] [--seconds 4]

Scenarios, each run for ``--seconds`` by ``--clients`` threads of HTTP clients on this
machine (keep-alive connections), after a warm-up:

* ``1.1 launch``: signed LTI 1.1 launches (each with its own nonce, signed beforehand);
* ``1.3 login+launch``: the OIDC login (GET, state cookie), then the id_token POST, with a
  fresh id_token per launch (signed by the client, as a platform would);
* ``later page``: a page of an earlier launch (its id in the URL);
* ``1.1 grade, slow platform`` and ``1.3 AGS score, slow platform``: a later page that
  sends a grade to the platform (LTI 1.1 Basic Outcomes; an LTI Advantage score, its
  service token fetched once), which takes 200 ms to answer (where the event loop should
  win), by ``--slow-clients`` clients (32: a class submitting at once).

gunicorn runs its default sync workers (one request at a time each), then gthread workers
(16 threads each); uvicorn one event loop per worker, the core's database work in AnyIO's
thread pool, LTI Advantage calls awaited on httpx (the 1.1 outcome call, made with
requests, in the adapter's platform threads).  The database is one SQLite file
(WAL) for both.  Clients and servers share this machine's cores, so absolute figures are
this machine's; compare the two columns.
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from ltikit.crypto import SecretBox
from ltikit.storage.sql import upgrade
from ltikit.store import Store
from ltikit.testing import launch_params, sign_launch
from ltikit.testing.lti13 import TestPlatform

KEY, SECRET = "bench-key", "bench-secret"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"

APPS = '''
import os
KEY, SECRET = "bench-key", "bench-secret"
CONFIG = {"LTIKIT_DATABASE_URL": os.environ["BENCH_DB"], "LTIKIT_CONSUMERS": {KEY: SECRET},
          "LTIKIT_AUTO_UPGRADE": False, "LTIKIT_COOKIE_SECURE": False,
          "LTIKIT_LTI13_REDIRECT_URI": "/launch",
          "LTIKIT_ENCRYPTION_KEYS": os.environ["BENCH_KEYS"]}
'''

FLASK_APP = APPS + '''
from flask import Flask
from ltikit.flask import LTIKit, lti
app = Flask("bench")
app.config.update(SECRET_KEY="bench-secret-key", **CONFIG)
LTIKit(app)

@app.route("/launch", methods=["POST"])
@lti(request="initial")
def launch(lti):
    return lti.launch_id

@app.route("/page")
@lti(request="session")
def page(lti):
    return f"page for {lti.user_id}"

@app.route("/grade", methods=["POST"])
@lti(request="session")
def grade(lti):
    return str(lti.post_grade(0.5))
'''

FASTAPI_APP = APPS + '''
from typing import Annotated
from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse
from ltikit.starlette import LTI, LTIKit
app = FastAPI()
kit = LTIKit(app, config=CONFIG, secret_key="bench-secret-key")

@app.post("/launch", response_class=PlainTextResponse)
async def launch(lti: Annotated[LTI, Depends(kit.launch(request="initial"))]):
    return lti.launch_id

@app.get("/page", response_class=PlainTextResponse)
async def page(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
    return f"page for {lti.user_id}"

@app.post("/grade", response_class=PlainTextResponse)
async def grade(lti: Annotated[LTI, Depends(kit.launch(request="session"))]):
    return str(await lti.post_grade(0.5))
'''

OUTCOME_OK = (b'<?xml version="1.0" encoding="UTF-8"?><imsx_POXEnvelopeResponse xmlns='
              b'"http://www.imsglobal.org/services/ltiv1p1/xsd/imsoms_v1p0"><imsx_POXHeader>'
              b'<imsx_POXResponseHeaderInfo><imsx_version>V1.0</imsx_version>'
              b'<imsx_messageIdentifier>1</imsx_messageIdentifier><imsx_statusInfo>'
              b'<imsx_codeMajor>success</imsx_codeMajor><imsx_severity>status</imsx_severity>'
              b'<imsx_messageRefIdentifier>1</imsx_messageRefIdentifier>'
              b'<imsx_operationRefIdentifier>replaceResult</imsx_operationRefIdentifier>'
              b'</imsx_statusInfo></imsx_POXResponseHeaderInfo></imsx_POXHeader>'
              b'<imsx_POXBody><replaceResultResponse/></imsx_POXBody>'
              b'</imsx_POXEnvelopeResponse>')


class _PlatformServer(http.server.ThreadingHTTPServer):
    # A real platform takes many connections at once; the standard library's listen
    # backlog of 5 would drop the connects of a large class grading at once.
    request_queue_size = 1024


class _SlowPlatform(http.server.BaseHTTPRequestHandler):
    """A platform whose grade services take 200 ms: LTI 1.1 outcomes (``/outcomes``), and
    LTI Advantage scores (``/lineitems/1/scores``) after a quick token (``/token``)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/token":
            body, kind = (b'{"access_token": "bench-token", "token_type": "Bearer", '
                          b'"expires_in": 3600}'), "application/json"
        else:
            time.sleep(0.2)
            body, kind = (OUTCOME_OK, "application/xml") if self.path == "/outcomes" else \
                (b"{}", "application/json")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], cwd: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=cwd, env=env,  # noqa: S603 - our own command
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/nothing", timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{command[0]} did not start")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def run(clients: int, seconds: float, make_step):
    """Each client thread repeats its step (``make_step()`` gives one step function per
    client) for ``seconds``; returns (requests per second, median ms, 95th ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    errors = []

    def client() -> None:
        step = make_step()
        mine = []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                step()
            except Exception as exc:
                errors.append(repr(exc))
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[0]}")
    latencies.sort()
    return (len(latencies) / seconds, statistics.median(latencies) * 1000,
            latencies[int(len(latencies) * 0.95)] * 1000)


def scenarios(base: str, platform: TestPlatform, slow: str):
    outcomes = f"{slow}/outcomes"

    def signed_launch(session: requests.Session, **params: str) -> str:
        launch = sign_launch(f"{base}/launch", launch_params(**params), key=KEY,
                             secret=SECRET)
        answer = session.post(launch.url, data=launch.body, headers=launch.headers,
                              timeout=30)
        answer.raise_for_status()
        return answer.text

    def lti11():
        session = requests.Session()
        return lambda: signed_launch(session)

    def lti13_launch(session: requests.Session, **claims: object) -> str:
        target = f"{base}/launch"
        login = session.get(f"{base}/lti13/login", allow_redirects=False, timeout=30,
                            params={"iss": platform.issuer, "login_hint": "h",
                                    "target_link_uri": target,
                                    "client_id": platform.client_id,
                                    "lti_message_hint": uuid.uuid4().hex})
        auth = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["Location"]).query)
                .items()}
        token = platform.id_token(platform.claims(nonce=auth["nonce"], target_link_uri=target,
                                                  **claims))
        answer = session.post(target, data={"id_token": token, "state": auth["state"]},
                              timeout=30)
        answer.raise_for_status()
        return answer.text

    def lti13():
        session = requests.Session()
        return lambda: lti13_launch(session)

    def ags():
        session = requests.Session()
        launch_id = lti13_launch(session, **{AGS_CLAIM: {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitem": f"{slow}/lineitems/1", "lineitems": f"{slow}/lineitems"}})
        return lambda: session.post(f"{base}/grade", data={"ltikit_launch": launch_id},
                                    timeout=30).raise_for_status()

    def later():
        session = requests.Session()
        launch_id = signed_launch(session)
        return lambda: session.get(f"{base}/page", params={"ltikit_launch": launch_id},
                                   timeout=30).raise_for_status()

    def grade():
        session = requests.Session()
        launch_id = signed_launch(session, lis_outcome_service_url=outcomes,
                                  lis_result_sourcedid=uuid.uuid4().hex)
        return lambda: session.post(f"{base}/grade", data={"ltikit_launch": launch_id},
                                    timeout=30).raise_for_status()

    return {"1.1 launch": lti11, "1.3 login+launch": lti13, "later page": later,
            "1.1 grade, slow platform": grade, "1.3 AGS score, slow platform": ags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--slow-clients", type=int, default=32,
                        help="clients of the slow-platform scenario (they mostly wait)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ltikit-bench-"))
    (work / "bench_flask_app.py").write_text(FLASK_APP)
    (work / "bench_fastapi_app.py").write_text(FASTAPI_APP)
    database = f"sqlite:///{work / 'tool.sqlite3'}"
    keys = SecretBox.generate_key()
    store = Store(database, encryption_keys=keys)
    upgrade(store.engine)
    store.tool_keys.generate()  # signs the service token requests
    slow_server = _PlatformServer(("127.0.0.1", 0), _SlowPlatform)
    slow_server.daemon_threads = True
    threading.Thread(target=slow_server.serve_forever, daemon=True).start()
    slow = f"http://127.0.0.1:{slow_server.server_port}"
    platform = TestPlatform()
    platform.register(store.registrations, token_url=f"{slow}/token", service_origins=(slow,))
    env = dict(os.environ, BENCH_DB=database, BENCH_KEYS=keys, PYTHONPATH=str(work))
    bin_dir = Path(sys.executable).parent
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    servers = {
        "Flask, gunicorn": lambda port: [str(bin_dir / "gunicorn"), "-w", str(args.workers),
                                         "-b", f"127.0.0.1:{port}", "--log-level", "error",
                                         "bench_flask_app:app"],
        "Flask, gunicorn gthread": lambda port: [
            str(bin_dir / "gunicorn"), "-w", str(args.workers), "-k", "gthread", "--threads",
            "16", "-b", f"127.0.0.1:{port}", "--log-level", "error", "bench_flask_app:app"],
        "FastAPI, uvicorn": lambda port: [str(bin_dir / "uvicorn"), "--workers",
                                          str(args.workers), "--port", str(port),
                                          "--log-level", "error", "--no-access-log",
                                          "bench_fastapi_app:app"],
    }
    for name, command in servers.items():
        port = free_port()
        process = start(command(port), work, env, port)
        try:
            base = f"http://127.0.0.1:{port}"
            for scenario, make_step in scenarios(base, platform, slow).items():
                clients = args.slow_clients if "slow" in scenario else args.clients
                run(clients, 1.0, make_step)  # warm-up: connections, caches, keys
                results.setdefault(scenario, {})[name] = run(clients, args.seconds,
                                                             make_step)
        finally:
            stop(process)
    slow_server.shutdown()
    print(f"{args.workers} workers each, {args.clients} clients ({args.slow_clients} for the "
          f"slow platform), {args.seconds:g} s per scenario, SQLite, {os.cpu_count()} cores "
          "shared with the clients")
    names = list(servers)
    print(f"{'scenario':<24}" + "".join(f"{n:>34}" for n in names))
    for scenario, by_server in results.items():
        cells = "".join(f"{by_server[n][0]:>10.0f}/s {by_server[n][1]:>7.1f} ms "
                        f"p95 {by_server[n][2]:>6.1f}" for n in names)
        print(f"{scenario:<24}{cells}")


if __name__ == "__main__":
    main()
