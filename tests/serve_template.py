"""Run the template tool as a separate worker process: ``python serve_template.py``.

Its settings come from the environment (see the template's .env.example); it prints the
port it listens on, then serves until killed (``SERVE_THREADED=0``: one request at a time).
"""

import os
import sys
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src/ltikit/template/files"))

from app import create_app


class Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


# SERVE_THREADED=0: one request at a time, as a gunicorn sync worker serves them.
threaded = os.environ.get("SERVE_THREADED", "1") != "0"
server = make_server("127.0.0.1", 0, create_app(), threaded=threaded, request_handler=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
