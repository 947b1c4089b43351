#!/usr/bin/env python3
"""The two commands of this repository; needs only Python 3.11+.

    python3 dev.py run     # the local platform on http://localhost:8000 with the example tool
    python3 dev.py test    # lint, strict types and the whole test suite

Both create ``.venv`` (once, or again when pyproject.toml changes) and install ltikit
into it in editable mode with its development dependencies.

``run`` listens on PLATFORM_PORT (default 8000, the platform) and PORT (default 5000, the
tool), keeps its data in LTIKIT_DEV_DIR (default .dev/) and stops both servers on Ctrl-C
or SIGTERM.  ``test`` installs PostgreSQL and Chromium with apt-get when missing (as root),
waiting up to LTIKIT_APT_WAIT seconds (default 600) for another apt-get or dpkg to finish.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".ltikit-installed"


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit(f"ltikit needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing ltikit and its development dependencies into .venv ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def _postgres_installed() -> bool:
    return bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))) or \
        shutil.which("initdb") is not None


def _chromium_installed() -> bool:
    return Path("/usr/bin/chromium").exists()


# Servers and browsers some tests need, with the Debian packages that provide them.
SYSTEM_NEEDS = {
    "postgresql": (_postgres_installed, "LTIKIT_TEST_POSTGRES_URL"),
    "chromium": (_chromium_installed, "LTIKIT_TEST_CHROMIUM"),
}


# The locks apt-get and dpkg hold while they work (apt-get update: the lists lock).
APT_LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
             "/var/cache/apt/archives/lock")


def apt_locks_free(paths: Sequence[str] = APT_LOCKS) -> bool:
    """Is none of apt's and dpkg's locks held by another process?  (They are fcntl locks:
    taking one for a moment and letting it go is how apt itself tests them.)"""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:  # missing (nothing ran yet) or not ours to open
            continue
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        finally:
            os.close(fd)  # closing drops the lock
    return True


def wait_for_apt(seconds: float, *, paths: Sequence[str] = APT_LOCKS,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> bool:
    """Wait, at most ``seconds``, until no other apt-get or dpkg holds its locks."""
    deadline = clock() + seconds
    said = False
    while not apt_locks_free(paths):
        if clock() >= deadline:
            return False
        if not said:
            print(f"another apt-get or dpkg is running: waiting for it (at most "
                  f"{seconds:.0f} s, LTIKIT_APT_WAIT) ...", flush=True)
            said = True
        sleep(2.0)
    return True


def _apt(args: list[str], env: dict[str, str], deadline: float) -> None:
    """Run apt-get, waiting for the locks first, and again if it lost a race for them."""
    apt = shutil.which("apt-get") or "apt-get"
    while True:
        if not wait_for_apt(max(0.0, deadline - time.monotonic())):
            sys.exit("apt-get: another apt-get or dpkg still holds the package locks after "
                     "LTIKIT_APT_WAIT seconds; run `python3 dev.py test` again when it is done.")
        done = subprocess.run([apt, *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        if done.returncode == 0:
            return
        if "lock" in done.stderr.lower() and time.monotonic() < deadline:
            continue  # another apt-get took the lock between our check and the start
        sys.exit(f"apt-get {' '.join(args)} failed (exit {done.returncode}):\n"
                 f"{done.stderr.strip()}")


def ensure_system_packages() -> None:
    """Install, with apt-get, what the tests need and the machine lacks (as root only)."""
    missing = [package for package, (installed, override) in SYSTEM_NEEDS.items()
               if not os.environ.get(override) and not installed()]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"The tests need {', '.join(missing)}. Install with: apt-get install "
                 + " ".join(missing) + " (or see the README to use your own servers).")
    print(f"installing {', '.join(missing)} with apt-get ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    deadline = time.monotonic() + float(os.environ.get("LTIKIT_APT_WAIT") or 600)
    _apt(["update", "-q"], env, deadline)
    _apt(["install", "-y", "-q", "--no-install-recommends", *missing], env, deadline)


def run_tests(args: list[str]) -> int:
    lint = subprocess.run([str(PYTHON), "-m", "ruff", "check", "src", "tests", "examples",
                           "bench", "dev.py"], cwd=ROOT)
    if lint.returncode:
        return lint.returncode
    # Strict typing of the library and its dev platform ([tool.mypy] in pyproject.toml).
    types = subprocess.run([str(PYTHON), "-m", "mypy"], cwd=ROOT)
    if types.returncode:
        return types.returncode
    return subprocess.run([str(PYTHON), "-m", "pytest", *args], cwd=ROOT).returncode


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM when dev.py ends, however it ends (even SIGKILL)."""
    # Not Linux (no prctl): the signal handlers in run_example still stop it.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_example() -> int:
    """Run the platform and the tool (examples/with_platform.py) until Ctrl-C or SIGTERM,
    then stop them, so that no server is left holding PORT or PLATFORM_PORT."""
    child = subprocess.Popen([str(PYTHON), str(ROOT / "examples" / "with_platform.py")],
                             cwd=ROOT, preexec_fn=_die_with_parent)

    def stop(signum: int, _frame: object) -> None:
        child.terminate()

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    try:
        while True:  # short waits: a signal's handler runs at the latest half a second on
            try:
                return child.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:  # Ctrl-C reaches the child too (same process group)
        child.terminate()
        child.wait(timeout=15)
        return 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "help"
    if command not in ("run", "test"):
        print(__doc__)
        return 0 if command in ("help", "-h", "--help") else 2
    ensure_venv()
    if command == "test":
        ensure_system_packages()
        return run_tests(argv[2:])
    return run_example()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
