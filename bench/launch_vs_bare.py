"""Cost of an LTI 1.1 launch through ``@lti`` against a bare Flask route, in one process.

    .venv/bin/python bench/launch_vs_bare.py [--launches 3000] [--rounds 5]

Both routes receive the same signed POST (about 30 form fields, as Canvas sends).  The
bare route parses the form and returns a string; the launch route verifies the OAuth
signature, claims the nonce and stores the launch in a SQLite *file* (WAL), sets the
launch cookie and returns the same string.  Requests are pre-built WSGI environs called
on ``app.wsgi_app`` directly, so neither side pays for a test client; signing happens
before timing.  Rounds alternate between the two routes and the best round of each is
compared, which filters out noise from other processes.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

from flask import Flask, request
from werkzeug.test import EnvironBuilder

from ltikit.flask import LTIKit, lti
from ltikit.testing import launch_params, sign_launch

KEY, SECRET = "bench-key", "bench-secret"


def build_app(db_dir: Path) -> Flask:
    app = Flask("bench", instance_path=str(db_dir))
    app.config.update(SECRET_KEY="bench", LTIKIT_CONSUMERS={KEY: SECRET},
                      LTIKIT_DATABASE_URL=f"sqlite:///{db_dir}/bench.sqlite3")
    LTIKit(app)

    @app.route("/bare", methods=["POST"])
    def bare():
        return f"hello {request.form.get('user_id')}"

    @app.route("/launch", methods=["POST"])
    @lti(request="initial")
    def launch(lti):
        return f"hello {lti.user_id}"

    return app


def environs(path: str, count: int) -> list[tuple[dict, bytes]]:
    built = []
    for i in range(count):
        signed = sign_launch(f"http://localhost{path}",
                             launch_params(user_id=f"user-{i}"), key=KEY, secret=SECRET)
        builder = EnvironBuilder(path=path, method="POST", base_url="http://localhost",
                                 headers=signed.headers, data=signed.body)
        env = builder.get_environ()
        body = env["wsgi.input"].read()
        built.append((env, body))
    return built


def run(app: Flask, requests: list[tuple[dict, bytes]], expect: str) -> float:
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    wsgi = app.wsgi_app
    start = time.perf_counter()
    for env, body in requests:
        env = dict(env)
        env["wsgi.input"] = io.BytesIO(body)
        for _chunk in wsgi(env, start_response):
            pass
    elapsed = time.perf_counter() - start
    if any(not s.startswith(expect) for s in statuses):
        raise SystemExit(f"unexpected statuses: {sorted(set(statuses))}")
    return elapsed / len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--launches", type=int, default=3000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(Path(tmp))
        run(app, environs("/launch", 200), "200")  # warm up: imports, caches, pool
        run(app, environs("/bare", 200), "200")
        bare_times, launch_times = [], []
        for _ in range(args.rounds):
            launches = environs("/launch", args.launches)  # fresh nonces every round
            bare_times.append(run(app, environs("/bare", args.launches), "200"))
            launch_times.append(run(app, launches, "200"))
        replay = run(app, launches[:50], "401")  # the nonces really were persisted
    bare, launch = min(bare_times), min(launch_times)
    print(f"bare Flask route : {bare * 1e6:8.1f} µs/request (median of rounds "
          f"{statistics.median(bare_times) * 1e6:.1f})")
    print(f"@lti launch      : {launch * 1e6:8.1f} µs/request (median of rounds "
          f"{statistics.median(launch_times) * 1e6:.1f})")
    print(f"replayed launch  : {replay * 1e6:8.1f} µs/request (refused with 401)")
    print(f"ratio launch/bare: {launch / bare:.2f}x")


if __name__ == "__main__":
    main()
