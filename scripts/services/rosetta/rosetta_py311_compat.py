"""Loaded in Rosetta's own venv (never the project's) by a .pth file rosetta.sh installs: Rosetta's view
decorators call inspect.getargspec, which Python 3.11 removed. Restore it as Python <= 3.10
had it (getfullargspec's first four fields) so the upstream code runs unchanged."""

import inspect
from collections import namedtuple

if not hasattr(inspect, "getargspec"):
    ArgSpec = namedtuple("ArgSpec", "args varargs keywords defaults")

    def getargspec(func):  # type: ignore[no-untyped-def]
        spec = inspect.getfullargspec(func)
        return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)

    inspect.getargspec = getargspec
