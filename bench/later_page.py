"""Cost of a later page (a request carrying an earlier launch's id) against a bare Flask
route, on SQLite and on PostgreSQL, in one process and one run.

    .venv/bin/python bench/later_page.py [--requests 2000] [--rounds 5] [--postgres-url URL]

A later page through ``@lti(request="session")`` reads the launch's row (one SELECT by
primary key) and checks its secret; the bare route returns a string.  Without
``--postgres-url`` a throw-away PostgreSQL cluster is started with the machine's binaries
(as the tests do, tests/servers.py) and stopped at the end; without binaries only SQLite is
measured.  Requests are pre-built WSGI environs called on ``app.wsgi_app``; the best
round of each route is compared.  On PostgreSQL the database is on this machine (loopback):
each extra round trip costs tens of microseconds here, far more across a network.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask
from werkzeug.test import EnvironBuilder

from ltikit.flask import LTIKit, lti
from ltikit.testing import launch_params, sign_launch

KEY, SECRET = "bench-key", "bench-secret"
BASE = "https://tool.example.edu"


def build_app(database_url: str, instance: Path) -> Flask:
    app = Flask("later", instance_path=str(instance))
    app.config.update(SECRET_KEY="bench", LTIKIT_CONSUMERS={KEY: SECRET},
                      LTIKIT_DATABASE_URL=database_url)
    LTIKit(app)

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return lti.launch_id

    @app.route("/bare")
    def bare():
        return "page"

    @app.route("/page")
    @lti(request="session")
    def page(lti):
        return "page"

    return app


def launch_id(app: Flask) -> str:
    signed = sign_launch(BASE + "/launch", launch_params(), key=KEY, secret=SECRET)
    response = app.test_client().open(**signed.for_flask())
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def run(app: Flask, path: str, token: str, n: int) -> float:
    environ = EnvironBuilder(path=path, base_url=BASE,
                             query_string={"ltikit_launch": token}).get_environ()
    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    wsgi = app.wsgi_app
    gc.collect()
    gc.freeze()
    start = time.perf_counter()
    for _ in range(n):
        for _chunk in wsgi(dict(environ), start_response):
            pass
    elapsed = time.perf_counter() - start
    gc.unfreeze()
    if any(not s.startswith("200") for s in statuses):
        raise SystemExit(f"unexpected statuses: {sorted(set(statuses))}")
    return elapsed / n


@contextlib.contextmanager
def postgres(url: str | None):
    if url:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from servers import PostgresServer, postgres_bin

    if postgres_bin() is None:
        yield None
        return
    with PostgresServer.running() as server:
        yield server.database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres-url", help="a PostgreSQL database to use (it gets "
                        "ltikit's tables); default: a throw-away local cluster")
    args = parser.parse_args()
    logging.getLogger("ltikit").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp, postgres(args.postgres_url) as pg_url:
        databases = {"sqlite": f"sqlite:///{tmp}/bench.sqlite3"}
        if pg_url:
            databases["postgresql"] = pg_url.replace("postgresql://", "postgresql+psycopg://",
                                                     1)
        for name, url in databases.items():
            app = build_app(url, Path(tmp) / name)
            token = launch_id(app)
            times: dict[str, list[float]] = {"/bare": [], "/page": []}
            for path in times:  # warm up: imports, caches, the pool
                run(app, path, token, 200)
            for _ in range(args.rounds):
                for path in times:
                    times[path].append(run(app, path, token, args.requests))
            bare, page = min(times["/bare"]), min(times["/page"])
            print(f"[{name}] bare route : {bare * 1e6:7.1f} µs/request "
                  f"(median {statistics.median(times['/bare']) * 1e6:.1f})")
            print(f"[{name}] later page : {page * 1e6:7.1f} µs/request "
                  f"(median {statistics.median(times['/page']) * 1e6:.1f}), "
                  f"ratio {page / bare:.2f}x, overhead {(page - bare) * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
