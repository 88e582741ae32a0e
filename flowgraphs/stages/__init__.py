"""Flowgraph stages, one module each: a flowgraph's ``type = "rx"`` is ``flowgraphs/stages/rx.py``.

A stage module defines a :class:`flowgraphs.stage.Stage` subclass and names it ``STAGE``;
adding a stage type means adding a module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def stage_types() -> list[str]:
    """Names of the stage modules (the valid ``type`` values), sorted."""
    from flowgraphs import stages

    return sorted(m.name for m in pkgutil.iter_modules(stages.__path__) if not m.name.startswith("_"))


def stage_class(type_name: str):
    """The Stage subclass of stage type ``type_name``.

    Raises
    ------
    ValueError
        No module ``flowgraphs/stages/<type_name>.py``, or it defines no ``STAGE``.
    """
    if not isinstance(type_name, str) or not _NAME.match(type_name) or type_name not in stage_types():
        raise ValueError(f"unknown stage type {type_name!r}; known: {', '.join(stage_types())}")
    module = importlib.import_module(f"flowgraphs.stages.{type_name}")
    cls = getattr(module, "STAGE", None)
    if cls is None:
        raise ValueError(f"flowgraphs/stages/{type_name}.py defines no STAGE class")
    return cls
