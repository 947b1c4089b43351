"""``ltikit new``: a new project whose own tests pass right away."""

from __future__ import annotations

import subprocess
import sys

from ltikit.template import create_project, title_from


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
    assert "6 passed" in tests.stdout
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
