"""Run the FastAPI test tool (tests/adapters.py) as a separate uvicorn worker process:
``python serve_fastapi_tool.py DIR DB_URL``.

Prints the port it listens on, then serves until killed, as serve_tool.py does for Flask.
"""

import socket
import sys
import time
from pathlib import Path

import uvicorn

from adapters import fastapi_tool

app, _, _ = fastapi_tool(Path(sys.argv[1]), time.time, None, LTIKIT_TRUSTED_PROXIES=1,
                         LTIKIT_DATABASE_URL=sys.argv[2])
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
print(port, flush=True)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
