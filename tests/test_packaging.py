"""What pyproject.toml promises: Flask and werkzeug only in the `emulators` extra, production code
that runs without them, and every declared package-data file shipped.

"Without them" is a real interpreter in which importing flask or werkzeug fails the way it does
when they are not installed (a finder at the front of sys.meta_path); nothing of gensvc is patched.
tests/test_install.py checks the same in a fresh venv that pip filled without extras.
"""

from __future__ import annotations

import glob
import pkgutil
import subprocess
import sys
import textwrap
import tomllib

from packaging.requirements import Requirement

import gensvc
from helpers import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
EMULATOR_ONLY = {"flask", "werkzeug"}
INSTALL_LINE = "pip install 'gensvc[emulators]'"

WITHOUT_FLASK = textwrap.dedent("""\
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("flask", "werkzeug"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NotInstalled())
    for name in [name for name in sys.modules if name.partition(".")[0] in ("flask", "werkzeug")]:
        del sys.modules[name]
""")


def run_without_flask(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_FLASK + textwrap.dedent(code), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def production_modules() -> list[str]:
    """Every module of gensvc but the emulators (which are what needs Flask)."""
    return sorted(info.name for info in pkgutil.walk_packages(gensvc.__path__, "gensvc.")
                  if not info.name.startswith("gensvc.emulators"))


def test_flask_and_werkzeug_are_only_in_the_emulators_extra_and_the_test_extra_brings_it():
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    assert not {Requirement(spec).name.lower() for spec in project["dependencies"]} & EMULATOR_ONLY
    assert {Requirement(spec).name.lower() for spec in extras["emulators"]} == EMULATOR_ONLY
    test = [Requirement(spec) for spec in extras["test"]]
    assert any(req.name == "gensvc" and req.extras == {"emulators"} for req in test), extras["test"]


def test_every_production_module_and_a_wrapper_import_with_flask_and_werkzeug_not_installed():
    modules = production_modules()
    assert {"gensvc.cli", "gensvc.runner", "gensvc.demo", "gensvc.core.http", "gensvc.services.bravo"} <= set(modules)
    done = run_without_flask(f"""
        import importlib, runpy
        for name in {modules!r}:
            importlib.import_module(name)
        try:
            import flask
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("flask was importable")
        sys.argv = ["wrapper.py", "--help"]  # a wrapper outside Snakemake is the CLI
        runpy.run_path("wrappers/bravo/frequencies/wrapper.py", run_name="__main__")
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage: gensvc bravo frequencies" in done.stdout


def test_gensvc_emulate_without_flask_says_in_one_line_to_install_the_extra_and_exits_2():
    done = run_without_flask("""
        from gensvc.cli import main
        sys.exit(main(sys.argv[1:]))
    """, "emulate", "bravo", "--port", "0")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("gensvc emulate: ") and INSTALL_LINE in done.stderr


def test_gensvc_demo_without_flask_says_in_one_line_to_install_the_extra_and_exits_2():
    done = run_without_flask("""
        from gensvc.cli import main
        sys.exit(main(sys.argv[1:]))
    """, "demo", "-n")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("gensvc demo: ") and INSTALL_LINE in done.stderr


def test_every_package_data_pattern_names_at_least_one_file_of_the_checkout():
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        root = REPO / package.replace(".", "/")
        for pattern in patterns:
            assert glob.glob(str(root / pattern)), f"{package}: {pattern} matches no file, so none ships"


def test_python_m_gensvc_emulators_without_flask_says_the_same_one_line_and_exits_2():
    done = run_without_flask("""
        import runpy
        sys.argv = ["python -m gensvc.emulators", "bravo", "--port", "0"]
        runpy.run_module("gensvc.emulators", run_name="__main__", alter_sys=True)
    """)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("python -m gensvc.emulators: ") and INSTALL_LINE in done.stderr
