"""Run the test tool as a separate worker process: ``python serve_tool.py DB_DIR``.

Prints the port it listens on, then serves until killed.  Several of these sharing one
database stand for the worker processes of a real deployment behind a load balancer.
"""

import sys
from pathlib import Path

from werkzeug.serving import make_server

from conftest import build_tool

app = build_tool(Path(sys.argv[1]), LTIKIT_TRUSTED_PROXIES=1)
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
server.serve_forever()
