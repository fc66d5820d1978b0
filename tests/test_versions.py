"""Library versions recorded with every run session."""

from __future__ import annotations

import importlib.metadata
import sys

from eacps.versions import library_versions


def test_versions_name_python_eacps_its_libraries_and_plugin_distributions():
    v = library_versions()
    assert v["python"] == sys.version.split()[0]
    assert v["eacps"] == importlib.metadata.version("eacps") and v["torch"] == importlib.metadata.version("torch")
    assert v["eacps-digits"] == importlib.metadata.version("eacps-digits")  # plugin distributions too
    assert all(isinstance(x, str) and x for x in v.values())
