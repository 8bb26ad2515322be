"""A checkpoint's ``epoch`` and ``global_step``, read without unpickling anything.

Sweeps and ``average --ema`` put checkpoints in training order, and names such as
lightning-hydra-template's ``epoch_003.ckpt`` or ``last.ckpt`` do not say where a file
stands. torch's zip format keeps the pickle of the saved object in ``<archive>/data.pkl``;
Lightning's ``dump_checkpoint`` writes ``epoch`` and ``global_step`` as its first two keys.
Walking that member's opcodes with :func:`pickletools.genops` (which decodes opcodes and
their arguments, and builds, imports and calls nothing) finds both in its first bytes:
no object is made, no tensor is read, and a 100-file sweep reads a few hundred bytes of
each file. The standard library only: the sweeper calls this at every sweep's start.
"""

from __future__ import annotations

import os
import pickletools
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

Progress = tuple[int | None, int | None]
UNKNOWN: Progress = (None, None)
KEYS = ("epoch", "global_step")
# Lightning writes the two keys first; a plain torch dict may put them after its weights.
MAX_TOP_LEVEL_KEYS = 8
MAX_OPCODES = 300_000  # a whole ~10k-tensor state_dict before the keys, then give up

_INTS = frozenset({"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"})
_STRINGS = frozenset(
    {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
    | {"STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_DICTS = frozenset({"EMPTY_DICT", "DICT"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_SAME_OBJECT = frozenset({"SETITEM", "SETITEMS", "APPEND", "APPENDS", "ADDITEMS", "BUILD"})
_SKIPPED = frozenset({"PROTO", "FRAME"})  # no effect on the stack
_MARK = ("mark", None)
# The top-level keys of Lightning's dump_checkpoint (pytorch_lightning and lightning.pytorch).
_LIGHTNING_KEYS = frozenset(
    {"epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops", "callbacks"}
    | {"optimizer_states", "lr_schedulers", "hparams_name", "hyper_parameters"}
)


def read_progress(path: str | os.PathLike[str]) -> Progress:
    """``(epoch, global_step)`` saved in a torch zip checkpoint; ``None`` for what is not there.

    Never raises: a file that is not a zip (random bytes, torch's legacy format, a URL),
    truncated, or without the keys at the top of its saved dict gives ``(None, None)``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            member = _data_pickle(archive.namelist())
            if member is None:
                return UNKNOWN
            with archive.open(member) as stream:  # read as the opcodes are walked
                return scan(pickletools.genops(stream))
    except Exception:  # anything unreadable: unknown, and the caller falls back on names
        return UNKNOWN


def _data_pickle(names: Iterable[str]) -> str | None:
    """``<archive>/data.pkl``: ``archive`` in recent torch, the file's stem in older ones."""
    for name in names:
        folder, _, base = name.partition("/")
        if folder and base == "data.pkl":
            return name
    return None


def scan(ops: Iterator[tuple[Any, Any, Any]]) -> Progress:
    """The int values of the keys ``epoch`` and ``global_step`` of the pickled top-level dict.

    The pickle stack is followed by each opcode's documented stack effect. A pair is
    taken for certain when ``SETITEM(S)`` stores it in the top-level dict: anything nested
    (``loops``' own ``epoch``) has been folded into its container by then. That opcode
    comes after the whole dict, weights included, so a pair is also taken early when it
    sits right above the top-level dict at a key/value position and the next opcode
    pushes the key Lightning writes next (``global_step``, then the version): an int
    followed by that is the whole value, not the start of a tuple. A file can still lie
    about its progress; the worst that does is a wrong order.
    """
    stack: list[tuple[str, Any]] = []
    memo: dict[Any, tuple[str, Any]] = {}
    found: dict[str, int] = {}
    pending: tuple[str, int] | None = None  # a pair seen, if the next opcode confirms it
    stored = 0  # top-level entries already stored in the dict
    for count, (op, arg, _) in enumerate(ops):
        name = op.name
        if name in _SKIPPED:
            continue
        if name in _PUTS:
            if stack:
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            continue
        if name == "STOP" or count > MAX_OPCODES:
            break
        if stack and stack[0][0] == "dict":
            stored += _store(stack, name, found)
        if pending is not None:
            if name in _STRINGS and arg in _LIGHTNING_KEYS:
                found.setdefault(*pending)
            pending = None
        if all(key in found for key in KEYS):
            break
        if not _apply(stack, op, _item(name, arg, memo)):
            return UNKNOWN
        if not stack or stack[0][0] != "dict":
            if stack and stack[0] is not _MARK:
                return UNKNOWN  # the saved object is not a dict
            continue
        entries, nested = _top_level_entries(stack)
        if stored + len(entries) // 2 > MAX_TOP_LEVEL_KEYS:
            break
        if name in _INTS and not nested and _is_pair_end(entries):
            key, value = entries[-2][1], entries[-1][1]
            if key in KEYS and key not in found:
                pending = (key, value)
    return found.get("epoch"), found.get("global_step")


def _item(name: str, arg: Any, memo: dict[Any, tuple[str, Any]]) -> tuple[str, Any]:
    """What an opcode pushes, as far as the scan cares: an int, a str, a dict or other."""
    if name in _INTS and type(arg) is int:  # INT spells True/False as 01/00
        return ("int", arg)
    if name in _STRINGS and isinstance(arg, str):
        return ("str", arg)
    if name in _DICTS:
        return ("dict", None)
    if name in _GETS:
        return memo.get(arg, ("other", None))
    return ("other", None)


def _apply(stack: list[tuple[str, Any]], op: Any, item: tuple[str, Any]) -> bool:
    """The opcode's effect on the stack, as ``pickletools.dis`` tracks it; False if impossible."""
    before = op.stack_before
    if pickletools.markobject in before or (op.name == "POP" and stack and stack[-1] is _MARK):
        while stack and stack[-1] is not _MARK:
            stack.pop()
        if not stack:
            return False
        stack.pop()
        count = before.index(pickletools.markobject) if pickletools.markobject in before else 0
    else:
        count = len(before)
    if count > len(stack):
        return False
    if op.name in _SAME_OBJECT and count:
        item = stack[-count]  # the container the items went into stays what it was
    if count:
        del stack[-count:]
    stack.extend(_MARK if pushed is pickletools.markobject else item for pushed in op.stack_after)
    return True


def _top_level_entries(stack: list[tuple[str, Any]]) -> tuple[list[tuple[str, Any]], bool]:
    """Items above the top-level dict (and its ``MARK``) up to the next mark, and whether
    there is such a mark (something nested is being built above them)."""
    start = 2 if len(stack) > 1 and stack[1] is _MARK else 1
    entries = stack[start:]
    if _MARK in entries:
        return entries[: entries.index(_MARK)], True
    return entries, False


def _is_pair_end(entries: list[tuple[str, Any]]) -> bool:
    """An int was just pushed at a value position, right after a str at a key position."""
    return (
        len(entries) >= 2
        and len(entries) % 2 == 0
        and entries[-2][0] == "str"
        and entries[-1][0] == "int"
    )


def _store(stack: list[tuple[str, Any]], name: str, found: dict[str, int]) -> int:
    """Takes the keys from the pairs ``SETITEM``/``SETITEMS`` are about to store in the
    top-level dict; how many pairs that is."""
    if name == "SETITEM" and len(stack) == 3 and stack[1] is not _MARK:
        pairs = [(stack[1], stack[2])]
    elif name == "SETITEMS" and len(stack) >= 2 and stack[1] is _MARK and _MARK not in stack[2:]:
        entries = stack[2:]
        pairs = list(zip(entries[0::2], entries[1::2], strict=False))
    else:
        return 0
    for key, value in pairs:
        if key[0] == "str" and key[1] in KEYS and value[0] == "int":
            found.setdefault(key[1], value[1])
    return len(pairs)
