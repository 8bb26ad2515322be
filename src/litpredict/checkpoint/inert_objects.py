"""Reading pickled objects in a checkpoint without running or importing anything they name.

torch's weights-only unpickler refuses any global it does not know. Here every such global
(found beforehand by ``torch.serialization.get_unsafe_globals_in_checkpoint``, which runs
nothing) is mapped to an inert placeholder class of ours: the unpickler then calls the
placeholder (never the named class or reduce function), and the placeholder keeps nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class InertObject:
    """What a pickled object of an unknown class becomes: it holds no state and runs nothing."""

    pickled_name = "?"  # the global the file named, e.g. "functools.partial"

    def __new__(cls, *args: Any, **kwargs: Any) -> InertObject:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<inert {self.pickled_name}>"


def placeholders_for(names: list[str]) -> list[tuple[type, str]]:
    """``(placeholder class, name)`` pairs for ``torch.serialization.safe_globals``."""
    return [(type("InertObject", (InertObject,), {"pickled_name": name}), name) for name in names]


def unsafe_globals(path: Path) -> list[str]:
    """The globals the file names that the weights-only unpickler would refuse."""
    from torch.serialization import get_unsafe_globals_in_checkpoint

    return list(get_unsafe_globals_in_checkpoint(str(path)))


def load_with_placeholders(path: Path, names: list[str]) -> Any:
    """``torch.load(weights_only=True)`` with each of ``names`` read as an inert object."""
    import torch

    with torch.serialization.safe_globals(placeholders_for(names)), _unblocked(names):
        return torch.load(path, map_location="cpu", weights_only=True)


@contextmanager
def _unblocked(names: list[str]) -> Iterator[None]:
    """torch refuses any name from ``os``/``sys`` even when allowlisted; while ``names`` all
    map to placeholders, their modules may be looked up (they only ever find a placeholder).
    """
    from torch import _weights_only_unpickler as unpickler

    blocked = getattr(unpickler, "_blocklisted_modules", None)
    if not isinstance(blocked, list):
        yield
        return
    modules = {name.rpartition(".")[0] for name in names}
    before = list(blocked)
    blocked[:] = [module for module in blocked if module not in modules]
    try:
        yield
    finally:
        blocked[:] = before


def inert_names_in(value: Any) -> Iterator[str]:
    """The names of the inert objects anywhere inside ``value`` (dicts, lists, tuples)."""
    if isinstance(value, InertObject):
        yield value.pickled_name
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from inert_names_in(key)
            yield from inert_names_in(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from inert_names_in(item)
