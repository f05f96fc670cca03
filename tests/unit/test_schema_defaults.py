"""Every default an operation applies is the one its schema declares (and so --help shows)."""

import importlib
import inspect

import jsonschema
import pytest

from gensvc import schema
from gensvc.runner import LOCAL_MODULES

OPERATIONS = [(service, operation) for service, operation, _ in schema.operations()]


def operation_function(service: str, operation: str):
    module = importlib.import_module(LOCAL_MODULES.get(service, f"gensvc.services.{service}"))
    return module.OPERATIONS[operation]


@pytest.mark.parametrize("service, operation", OPERATIONS)
def test_function_defaults_are_the_schema_defaults(service, operation):
    params = schema.load(service, operation)["properties"]["params"]["properties"]
    for name, parameter in inspect.signature(operation_function(service, operation)).parameters.items():
        if parameter.kind is not parameter.KEYWORD_ONLY or parameter.default in (inspect.Parameter.empty, None):
            continue  # required, or "not given"
        assert name in params, f"{service} {operation}: param {name} is not in the schema"
        default = list(parameter.default) if isinstance(parameter.default, tuple) else parameter.default
        assert params[name].get("default") == default, f"{service} {operation}: {name}"


@pytest.mark.parametrize("service, operation", OPERATIONS)
def test_schema_defaults_are_valid_values(service, operation):
    params = schema.load(service, operation)["properties"]["params"]["properties"]
    for name, spec in params.items():
        if "default" in spec and spec["default"] is not None:
            jsonschema.validate(spec["default"], {k: v for k, v in spec.items() if k != "default"})


def test_the_genome_build_defaults_are_declared():
    for service, operation, name in [("bravo", "frequencies", "assembly"), ("opencravat", "submit", "assembly"),
                                     ("opencravat", "annotate", "assembly"), ("cgi", "submit", "reference")]:
        spec = schema.load(service, operation)["properties"]["params"]["properties"][name]
        assert spec["default"] == "auto" and "auto" in spec["enum"]
        assert "hg38" in spec["description"] or "hg19" in spec["description"]  # what auto falls back to


def test_the_service_settings_defaults_are_the_ones_settings_yaml_declares():
    import yaml

    from gensvc import settings

    declared = yaml.safe_load((schema.SCHEMA_DIR / "settings.yaml").read_text())["properties"]
    for name, (_, default) in settings.SETTINGS.items():
        assert name in declared, f"setting {name} is not in schemas/settings.yaml"
        if default is not None:  # url and rate_limit: per service (gensvc.settings.DEFAULT_URLS, ...)
            assert declared[name].get("default") == default, name
            assert "default" not in declared[name]["description"], f"{name}: the default is written twice"


def test_the_zip_checks_have_no_limits_of_their_own_so_the_schema_defaults_apply():
    import dataclasses

    from gensvc.core.download import ZipLimits

    for field in dataclasses.fields(ZipLimits):
        assert field.default is dataclasses.MISSING, f"ZipLimits.{field.name} has a default of its own"
    params = schema.load("cgi", "download")["properties"]["params"]["properties"]
    signature = inspect.signature(operation_function("cgi", "download")).parameters
    assert {name: signature[name].default for name in ("max_files", "max_bytes", "max_ratio")} == \
        {name: params[name]["default"] for name in ("max_files", "max_bytes", "max_ratio")}
