"""gensvc.schema's reading of the schemas, in process: the CLI finds the services with
operations from the schemas' file names alone (it used to parse all thirty YAML files on every
start, half of a call's start-up), and libyaml's loader, used when present, reads every schema
and the settings file exactly as PyYAML's Python loader does."""

from pathlib import Path

import pytest
import yaml

from gensvc import cli, schema

SCHEMA_FILES = sorted(schema.SCHEMA_DIR.glob("**/*.yaml"))


def test_the_services_with_operations_come_from_the_schema_file_names():
    assert set(schema.services_with_operations()) == {service for service, _, _ in schema.operations()}
    assert cli._services_with_operations()[:2] == ["bravo", "opencravat"]


def test_finding_the_services_parses_no_schema():
    schema.load.cache_clear()
    parsed_before = schema.yaml_documents_read()
    cli._services_with_operations()
    assert schema.yaml_documents_read() == parsed_before


@pytest.mark.skipif(not getattr(yaml, "__with_libyaml__", False), reason="PyYAML built without libyaml")
@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: str(p.relative_to(schema.SCHEMA_DIR)))
def test_the_fast_yaml_loader_reads_each_schema_as_the_python_loader_does(path: Path):
    text = path.read_text()
    assert schema.parse_yaml(text) == yaml.load(text, Loader=yaml.SafeLoader)
