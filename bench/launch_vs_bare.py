"""Cost of an LTI 1.1 launch through ``@lti`` against a bare Flask route, in one process.

    .venv/bin/python bench/launch_vs_bare.py [--launches 2000] [--rounds 5]

Every route receives the same kind of signed POST (about 30 form fields, as Canvas
sends).  The bare route parses the form and returns a string; the launch route verifies
the OAuth signature, claims the nonce and stores the launch in a SQLite *file* (WAL,
committed before the response), sets the launch cookie and returns the same string.
When PyLTI is importable (``pip install PyLTI`` in a separate venv), its decorator is
measured on a third route for comparison: it checks the signature but stores nothing.

Two measures, each over the same requests, signed before timing:

* ``wsgi``: pre-built WSGI environs called on ``app.wsgi_app``: the application's own
  cost, nothing else.  The strictest measure.
* ``http``: real HTTP/1.1 requests over one keep-alive connection to a werkzeug server
  running in this process: what a deployed tool's request costs, parsing included.

Rounds alternate between the routes; the best round of each is compared, which filters
out noise from other processes.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import io
import logging
import statistics
import tempfile
import threading
import time
from pathlib import Path

from flask import Flask, request
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.test import EnvironBuilder

from ltikit.flask import LTIKit, lti
from ltikit.testing import launch_params, sign_launch

try:
    from pylti.flask import lti as pylti_lti
except ImportError:
    pylti_lti = None

KEY, SECRET = "bench-key", "bench-secret"
HOST = "127.0.0.1"


def build_app(db_dir: Path) -> Flask:
    app = Flask("bench", instance_path=str(db_dir))
    app.config.update(SECRET_KEY="bench", LTIKIT_CONSUMERS={KEY: SECRET},
                      PYLTI_CONFIG={"consumers": {KEY: {"secret": SECRET}}},
                      LTIKIT_DATABASE_URL=f"sqlite:///{db_dir}/bench.sqlite3")
    LTIKit(app)

    @app.route("/bare", methods=["POST"])
    def bare():
        return f"hello {request.form.get('user_id')}"

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return f"hello {lti.user_id}"

    if pylti_lti is not None:
        @app.route("/pylti", methods=["POST"])
        @pylti_lti(request="initial", error=lambda exception=None: ("refused", 401), app=app)
        def pylti_launch(lti):
            return f"hello {lti.user_id}"

    return app


class Signed:
    """``count`` launches for ``path``, each with its own nonce."""

    def __init__(self, base: str, path: str, count: int) -> None:
        self.path = path
        self.launches = [sign_launch(f"{base}{path}", launch_params(user_id=f"user-{i}"),
                                     key=KEY, secret=SECRET) for i in range(count)]

    def environs(self, host: str) -> list[tuple[dict, bytes]]:
        built = []
        for signed in self.launches:
            env = EnvironBuilder(path=self.path, method="POST", base_url=f"http://{host}",
                                 headers=signed.headers, data=signed.body).get_environ()
            built.append((env, env["wsgi.input"].read()))
        return built


def run_wsgi(app: Flask, signed: Signed, host: str, expect: str) -> float:
    requests = signed.environs(host)
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    wsgi = app.wsgi_app
    # The pre-built requests are the harness's memory, not the app's: keep the garbage
    # collector from walking them during the timed loop (for both routes alike).
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for env, body in requests:
        env = dict(env)
        env["wsgi.input"] = io.BytesIO(body)
        for _chunk in wsgi(env, start_response):
            pass
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    if any(not s.startswith(expect) for s in statuses):
        raise SystemExit(f"unexpected statuses: {sorted(set(statuses))}")
    return elapsed / len(requests)


def run_http(port: int, signed: Signed, expect: int) -> float:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    bodies = [(s.body.encode() if isinstance(s.body, str) else s.body, s.headers)
              for s in signed.launches]
    statuses = []
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for body, headers in bodies:
        connection.request("POST", signed.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        statuses.append(response.status)
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    connection.close()
    if any(s != expect for s in statuses):
        raise SystemExit(f"unexpected statuses: {sorted(set(statuses))}")
    return elapsed / len(bodies)


class _KeepAlive(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args, **kwargs) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--launches", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("ltikit").setLevel(logging.ERROR)  # the replay check logs refusals
    routes = ["/bare", "/launch"] + (["/pylti"] if pylti_lti else [])
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(Path(tmp))
        server = make_server(HOST, 0, app, request_handler=_KeepAlive)
        port = server.server_port
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://{HOST}:{port}"
        measures = {
            "wsgi": lambda signed: run_wsgi(app, signed, f"{HOST}:{port}", "200"),
            "http": lambda signed: run_http(port, signed, 200),
        }
        results: dict[str, dict[str, list[float]]] = {m: {r: [] for r in routes}
                                                      for m in measures}
        for measure, runner in measures.items():
            for route in routes:  # warm up: imports, caches, pool, connection
                runner(Signed(base, route, 200))
            for _ in range(args.rounds):
                for route in routes:  # fresh nonces every round
                    results[measure][route].append(runner(Signed(base, route, args.launches)))
        last = Signed(base, "/launch", 50)
        run_wsgi(app, last, f"{HOST}:{port}", "200")
        run_wsgi(app, last, f"{HOST}:{port}", "401")  # the nonces really were persisted
        server.shutdown()

    for measure, by_route in results.items():
        bare = min(by_route["/bare"])
        print(f"[{measure}] bare Flask route : {bare * 1e6:7.1f} µs/request "
              f"(median of rounds {statistics.median(by_route['/bare']) * 1e6:.1f})")
        for route, label in (("/launch", "ltikit @lti    "), ("/pylti", "PyLTI @lti     ")):
            if route in by_route:
                best = min(by_route[route])
                print(f"[{measure}] {label} : {best * 1e6:7.1f} µs/request "
                      f"(median {statistics.median(by_route[route]) * 1e6:.1f}), "
                      f"ratio {best / bare:.2f}x, overhead {(best - bare) * 1e6:.1f} µs")
    print("replayed launches were refused with 401: the nonces were persisted")


if __name__ == "__main__":
    main()
