#!/usr/bin/env python3
"""The two commands of this repository; needs only Python 3.11+.

    python3 dev.py run     # the local platform on http://localhost:8000 with the example tool
    python3 dev.py test    # lint, strict types and the whole test suite

Both create ``.venv`` (once, or again when pyproject.toml changes) and install ltikit
into it in editable mode with its development dependencies.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
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
    apt = shutil.which("apt-get") or "apt-get"
    subprocess.run([apt, "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([apt, "install", "-y", "-q", "--no-install-recommends", *missing],
                   check=True, env=env, stdout=subprocess.DEVNULL)


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


def run_example() -> int:
    try:
        return subprocess.run([str(PYTHON), str(ROOT / "examples" / "with_platform.py")],
                              cwd=ROOT).returncode
    except KeyboardInterrupt:
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
