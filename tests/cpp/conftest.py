"""Fixtures of the libhmmn tests (test_cpp.py, test_gstreamer.py, test_install.py)."""

from __future__ import annotations

import pathlib

import pytest

SIZE = (96, 128)


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory) -> pathlib.Path:
    """hmmn-export of the built-in demo model (small configuration) at 96x128."""
    from hmmn_deploy.export import cli

    out = tmp_path_factory.mktemp("cpp_demo") / "export"
    assert cli.main(["--out", str(out), "--size", f"{SIZE[0]}x{SIZE[1]}", "--check-frames", "3"]) == 0
    return out
