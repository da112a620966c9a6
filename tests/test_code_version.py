"""Rules carry a hash of the package code they depend on, so code changes rerun them."""

import pytest

import asdflow


def test_code_version_is_stable_and_specific():
    a = asdflow.code_version("synth")
    assert a == asdflow.code_version("synth") and a.startswith(asdflow.__version__ + "+")
    assert a != asdflow.code_version("io", "schemas.py")


def test_code_version_follows_file_content(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "sub" / "m.py").write_text("x = 1\n")
    monkeypatch.setattr(asdflow, "__file__", str(pkg / "__init__.py"))
    before = asdflow.code_version("sub")
    (pkg / "sub" / "m.py").write_text("x = 2\n")
    assert asdflow.code_version("sub") != before


def test_code_version_missing_part():
    with pytest.raises(FileNotFoundError, match="no source"):
        asdflow.code_version("nope.py")
