"""The public API: every name of ``mlpjax.__all__`` imports and is documented in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

import mlpjax

API_PAGE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_public_name_imports_and_is_documented():
    page = API_PAGE.read_text()
    documented = set(re.findall(r"^\| `(\w+)", page, flags=re.M))
    assert documented == set(mlpjax.__all__)
    for name in mlpjax.__all__:
        assert getattr(mlpjax, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    try:
        mlpjax.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("mlpjax.no_such_name did not raise")
