"""Run the example tool beside the local platform: ``python3 dev.py run``.

The platform (a Canvas stand-in) listens on http://localhost:8000 and the tool on
http://127.0.0.1:5000: two sites, as a real tool and LMS are.  On first start the
example tool is installed in the platform with a course navigation link and a graded
assignment in "Introduction to Biology".  Both keep their state in ``.dev/`` (or
``$LTIKIT_DEV_DIR``); delete it to start over.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.pylti_app.app import app as tool_app  # noqa: E402

from ltikit.platform import DevPlatform  # noqa: E402

KEY = os.environ.get("CONSUMER_KEY", "__consumer_key__")
SECRET = os.environ.get("SHARED_SECRET", "__lti_secret__")


def main() -> None:
    platform_port = int(os.environ.get("PLATFORM_PORT", "8000"))
    tool_port = int(os.environ.get("PORT", "5000"))
    tool_url = f"http://127.0.0.1:{tool_port}"
    state = Path(os.environ.get("LTIKIT_DEV_DIR", ROOT / ".dev"))
    tool_app.config.setdefault("LTIKIT_DATABASE_URL", f"sqlite:///{state}/example-tool.sqlite3")
    platform = DevPlatform(state / "platform.sqlite3", port=platform_port)
    if not any(t["consumer_key"] == KEY for t in platform.store.tools()):
        tool_id = platform.add_lti11_tool(
            "PyLTI example", KEY, SECRET, url=f"{tool_url}/any",
            placements={"course_navigation": {"enabled": "true", "text": "PyLTI example"}})
        platform.add_assignment(platform.course_id("BIO101"), tool_id, "Example quiz", 10)
    tool_server = make_server("127.0.0.1", tool_port, tool_app, threaded=True)
    threading.Thread(target=tool_server.serve_forever, daemon=True).start()
    platform.start()
    print(f"\n  The platform: {platform.url}/  (the example tool: {tool_url})\n"
          "  Open Introduction to Biology, then 'PyLTI example' or 'Example quiz'.\n"
          "  Switch users at the top right; see grades under Grades, launches in the\n"
          "  Launch inspector.  Ctrl-C stops both.\n", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        tool_server.shutdown()
        platform.stop()


if __name__ == "__main__":
    main()
