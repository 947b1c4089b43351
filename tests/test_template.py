"""``ltikit new``: a new project whose own tests pass right away."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv

from ltikit.crypto import SecretBox
from ltikit.template import FILES, create_project, title_from

MINIMAL = {"SECRET_KEY": "x", "TOKEN_ENCRYPTION_KEYS": "x" * 43 + "="}


def test_a_new_project_passes_its_own_tests(tmp_path):
    created = subprocess.run([sys.executable, "-m", "ltikit.cli", "new", "demo"], cwd=tmp_path,
                             capture_output=True, text=True)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "demo"
    for name in (".env.example", ".gitignore", "README.md", "app.py", "settings.py",
                 "manage.py", "models.py", "requirements.txt", "migrations/env.py",
                 "templates/lti.xml", "tests/test_tool.py"):
        assert (project / name).is_file(), name
    assert "__TOOL_TITLE__" not in (project / "README.md").read_text()
    assert (project / "README.md").read_text().startswith("# Demo\n")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=project, capture_output=True, text=True, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "12 passed" in tests.stdout
    upgrade = subprocess.run(
        [sys.executable, "manage.py", "upgrade"], cwd=project, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "BASE_URL": "https://canvas.example.edu/",
             "LTI_CONSUMER_KEY": "k", "LTI_SHARED_SECRET": "s", "SECRET_KEY": "x",
             "OAUTH2_ID": "1", "OAUTH2_KEY": "y", "TOKEN_ENCRYPTION_KEYS":
             "x" * 43 + "=", "DATABASE_URL": f"sqlite:///{tmp_path}/demo.sqlite3"})
    assert upgrade.returncode == 0, upgrade.stderr
    assert "database is up to date" in upgrade.stdout


def test_new_refuses_to_overwrite_and_titles_come_from_the_name(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("mine")
    refused = subprocess.run([sys.executable, "-m", "ltikit.cli", "new", "taken"],
                             cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert title_from("course-roster_tool") == "Course Roster Tool"
    project = create_project(tmp_path / "x", title="Grade Helper")
    assert "Grade Helper" in (project / ".env.example").read_text()


def test_the_template_database_upgrades_on_postgresql(tmp_path, postgres_server):
    from sqlalchemy import create_engine, inspect

    project = create_project(tmp_path / "pgtool")
    url = postgres_server.database()
    upgrade = subprocess.run(
        [sys.executable, "manage.py", "upgrade"], cwd=project, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "BASE_URL": "https://canvas.example.edu/",
             "LTI_CONSUMER_KEY": "k", "LTI_SHARED_SECRET": "s", "SECRET_KEY": "x",
             "OAUTH2_ID": "1", "OAUTH2_KEY": "y", "TOKEN_ENCRYPTION_KEYS": "unused",
             "DATABASE_URL": url})
    assert upgrade.returncode == 0, upgrade.stderr
    names = set(inspect(create_engine(url)).get_table_names())
    assert {"tool_users", "tool_alembic_version", "ltikit_launches", "ltikit_canvas_tokens",
            "ltikit_alembic_version"} <= names


def installed_and_tested(project):
    """What the project's README says: ``python3 -m venv .venv``, ``pip install -r
    requirements.txt``, ``python -m pytest``; pytest's output."""
    venv.create(project / ".venv", with_pip=True)
    python = project / ".venv" / "bin" / "python"
    # Nothing of this process's environment (its venv, PYTHONPATH) leaks into the new one.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                              "--disable-pip-version-check", "-r", "requirements.txt"],
                             cwd=project, capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           cwd=project, capture_output=True, text=True, env=env, timeout=300)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    return tests.stdout


def test_a_new_project_installs_into_a_fresh_venv_as_its_readme_says(tmp_path):
    """README: python3 -m venv .venv; pip install -r requirements.txt; python -m pytest.
    ltikit is on no package index these machines reach: requirements.txt names the
    checkout this ltikit came from."""
    made = subprocess.run([sys.executable, "-m", "ltikit.cli", "new", "fresh"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "fresh"
    readme = (project / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme and "python -m pytest" in readme
    requirement = (project / "requirements.txt").read_text().splitlines()[1]
    assert requirement.startswith("ltikit[flask] @ file://"), requirement
    assert "12 passed" in installed_and_tested(project)


def test_a_fastapi_project_installs_into_a_fresh_venv_and_passes_its_tests(tmp_path):
    """``ltikit new --framework fastapi``: the same tool as a FastAPI app, installed the way
    its README says, passes its own tests (uvicorn and the local platform among them)."""
    made = subprocess.run([sys.executable, "-m", "ltikit.cli", "new", "quick",
                           "--framework", "fastapi"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "quick"
    assert "from fastapi import" in (project / "app.py").read_text()
    assert "uvicorn --factory app:create_app" in (project / "README.md").read_text()
    requirement = (project / "requirements.txt").read_text().splitlines()[1]
    assert requirement.startswith("ltikit[fastapi] @ file://"), requirement
    assert "9 passed" in installed_and_tested(project)


def test_missing_settings_are_listed_at_once_one_line_each(tmp_path):
    project = create_project(tmp_path / "tool")
    run = subprocess.run([sys.executable, "manage.py", "upgrade"], cwd=project,
                         capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "LTI_CONSUMER_KEY": "k",
                              "BASE_URL": "https://canvas.example.edu/",
                              "TRUSTED_PROXIES": "one"})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("  - ")]
    assert len(lines) == 5, run.stderr
    for name in ("SECRET_KEY", "TOKEN_ENCRYPTION_KEYS", "LTI_SHARED_SECRET", "OAUTH2_ID",
                 "TRUSTED_PROXIES"):
        assert any(name in line for line in lines), name


def test_a_project_makes_and_runs_its_own_migrations(tmp_path):
    project = create_project(tmp_path / "tool")
    env = {"PATH": "/usr/bin:/bin", **MINIMAL, "TOKEN_ENCRYPTION_KEYS": SecretBox.generate_key(),
           "DATABASE_URL": f"sqlite:///{tmp_path}/tool.sqlite3"}

    def manage(*args):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=project,
                              capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    manage("upgrade")
    models = project / "models.py"
    models.write_text(models.read_text().replace(
        '    Column("name", String(255)),\n',
        '    Column("name", String(255)),\n    Column("notes", String(500)),\n'))
    manage("revision", "-m", "user notes", "--autogenerate")
    written = project / "migrations" / "versions" / "0003_user_notes.py"
    assert written.is_file()
    script = written.read_text()
    assert "add_column" in script and "notes" in script
    assert "ltikit_" not in script  # ltikit's own tables are not this project's to migrate
    manage("upgrade")
    from sqlalchemy import create_engine, inspect

    columns = {c["name"] for c in inspect(create_engine(env["DATABASE_URL"]))
               .get_columns("tool_users")}
    assert "notes" in columns
    manage("revision", "-m", "empty one")
    assert (project / "migrations" / "versions" / "0004_empty_one.py").is_file()


def test_every_setting_route_and_database_file_is_accounted_for():
    """What settings.py reads is in .env.example; every route of app.py is in the README;
    .gitignore keeps SQLite's -wal and -shm files out."""
    class Recording(dict):
        """An environment that notes every name the settings read."""

        asked: set = set()

        def get(self, name, default=None):
            self.asked.add(name)
            return super().get(name, default)

    sys.path.insert(0, str(FILES))
    try:
        import settings
        settings.flask_config(Recording(MINIMAL, BASE_URL="https://c.example.edu/",
                                        OAUTH2_ID="1", OAUTH2_KEY="k", API_URL=""))
    finally:
        sys.path.remove(str(FILES))
        sys.modules.pop("settings", None)
    read = Recording.asked
    assert {"SECRET_KEY", "LTI_CONSUMER_KEY", "OAUTH2_SCOPES", "LOG_LEVEL"} <= read
    example = set(re.findall(r"^([A-Z0-9_]+)=", (FILES / "dot-env.example").read_text(),
                             flags=re.MULTILINE))
    assert read - example == set(), f"add to .env.example: {read - example}"
    assert "TOOL_DESCRIPTION" in example
    readme = (FILES / "README.md").read_text()
    routes = re.findall(r'@app\.route\("([^"]+)"', (FILES / "app.py").read_text())
    assert len(routes) >= 9
    assert [r for r in routes if f"{r}`" not in readme] == []
    gitignore = (FILES / "gitignore").read_text().split()
    assert {"*.sqlite3-wal", "*.sqlite3-shm", ".env"} <= set(gitignore)
