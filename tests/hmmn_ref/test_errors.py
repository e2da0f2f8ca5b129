"""One error hierarchy: every error the project raises on purpose derives from
hmmn_ref.HMMNError (and keeps its standard base), so callers can catch them all at once."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import hmmn_ref
import hmmn_deploy

PACKAGES = ["hmmn_ref", "hmmn_deploy.core", "hmmn_deploy.export", "hmmn_deploy.runtime", "hmmn_deploy.segment",
            "hmmn_deploy.evaluate", "hmmn_deploy.bench", "hmmn_deploy.demo"]


def project_exceptions():
    found = {}
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.iter_modules(package.__path__, name + "."):
            if info.name.endswith("__main__"):  # runs a command when imported
                continue
            module = importlib.import_module(info.name)
            for _, obj in inspect.getmembers(module, inspect.isclass):
                if issubclass(obj, BaseException) and obj.__module__.startswith(("hmmn_ref", "hmmn_deploy")):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_project_error_derives_from_one_base():
    found = project_exceptions()
    assert len(found) >= 20, sorted(found)  # the checkpoint, export, runtime, run and eval errors at least
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, hmmn_ref.HMMNError))
    assert outside == [], outside
    # No error pretends to be a failed assertion (pytest and `python -O` treat those specially).
    assert not [name for name, cls in found.items() if issubclass(cls, AssertionError)]
    assert hmmn_deploy.runtime.RuntimeInputError.__mro__[1:3] == (hmmn_ref.HMMNError, ValueError)
