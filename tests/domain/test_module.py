"""The package's docstring examples run, and it imports nothing but the standard library."""

import ast
import doctest
import importlib
import sys
from pathlib import Path

import pytest

import app.domain

PACKAGE = Path(app.domain.__file__).parent
MODULES = sorted(f"app.domain.{path.stem}" for path in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_pure(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    foreign = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names
        and not (name == "app.domain" or name.startswith("app.domain."))
    }
    assert not foreign


def test_public_api_is_exported():
    assert set(app.domain.__all__) <= set(dir(app.domain))
