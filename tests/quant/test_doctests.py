"""The numpydoc examples in app.quant stay true."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from app.quant import pricing, quoting, scheduling


@pytest.mark.parametrize("module", [pricing, quoting, scheduling], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
