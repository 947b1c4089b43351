"""Run the test tool as a separate worker process: ``python serve_tool.py DIR [DB_URL]``.

Prints the port it listens on, then serves until killed.  Several of these sharing one
database stand for the worker processes of a real deployment behind a load balancer.
"""

import sys
from pathlib import Path

from werkzeug.serving import make_server

from conftest import build_tool

config = {"LTIKIT_DATABASE_URL": sys.argv[2]} if len(sys.argv) > 2 else {}
app = build_tool(Path(sys.argv[1]), LTIKIT_TRUSTED_PROXIES=1, **config)
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
