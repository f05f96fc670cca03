"""docs/architecture.md names the modules as they are: every path it names exists, and every
module of gensvc/ (top level, core/, services/, merge/), every service and every emulator is
named in it."""

import re
from pathlib import Path

from gensvc.emulators.server import EMULATORS
from gensvc.settings import SERVICES

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "architecture.md").read_text()
NAMED = set(re.findall(r"`((?:gensvc|tests|schemas|wrappers|workflow)/[\w./<>-]*)`", DOC))


def test_every_path_the_architecture_names_exists():
    concrete = {path for path in NAMED if "<" not in path}
    assert concrete, "the document names no paths"
    assert sorted(path for path in concrete if not (REPO / path).exists()) == []


def test_every_core_module_is_named_in_the_architecture():
    modules = {f"gensvc/core/{p.name}" for p in (REPO / "gensvc" / "core").glob("*.py") if p.name != "__init__.py"}
    assert sorted(modules - NAMED) == []


def test_every_service_and_its_emulator_are_named_in_the_architecture():
    for service in SERVICES:
        assert f"gensvc/services/{service}.py" in NAMED, service
    for module in EMULATORS.values():
        assert f"`{module.rpartition('.')[2]}.py`" in DOC, module


def test_every_module_of_gensvc_its_services_and_merge_is_named_in_the_architecture():
    top = {f"gensvc/{p.name}" for p in (REPO / "gensvc").glob("*.py") if p.name != "__init__.py"}
    assert sorted(top - NAMED) == []
    for folder in ("services", "merge"):
        for path in (REPO / "gensvc" / folder).glob("*.py"):
            if path.name != "__init__.py":
                assert f"{path.name}`" in DOC, f"gensvc/{folder}/{path.name}"
