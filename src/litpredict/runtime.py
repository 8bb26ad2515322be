"""The Hydra job around a run: its directory and overrides, signals, and how errors end it.

Errors end a run with a short message on stderr (problem and fix) and a non-zero
exit; the traceback goes to the run's log file. In a multirun the error is re-raised
instead, so Hydra records the job as failed and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import re
import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from litpredict.errors import RunInterrupted, UserError

log = logging.getLogger(__name__)
T = TypeVar("T")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Job:
    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    log_file: Path | None = None

    @classmethod
    def from_hydra(cls) -> Job:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra = HydraConfig.get()
        run_dir = Path(hydra.runtime.output_dir)
        logging.captureWarnings(True)  # library warnings go to the log, not to stderr
        return cls(
            run_dir=run_dir,
            overrides=list(hydra.overrides.task),
            multirun=hydra.mode == RunMode.MULTIRUN,
            log_file=run_dir / f"{hydra.job.name}.log",
        )

    def explicit_keys(self, prefix: str) -> set[str]:
        """Keys under ``prefix.`` that the command line sets (``model.hidden_size=64``)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(self.overrides)
        start = f"{prefix}."
        return {o.key_or_group[len(start) :] for o in parsed if o.key_or_group.startswith(start)}


_NEEDS_QUOTES = re.compile(r"[=\s:()\[\]{}\\]")
_SWEEP_SYNTAX = re.compile(r"^(['\"]|\w+\()|,")


def quote_checkpoint_paths(argv: list[str]) -> list[str]:
    """Quote a plain ``ckpt_path=`` value that Hydra's override parser would reject.

    Lightning names checkpoints ``epoch=3-step=100.ckpt``; unquoted, the second ``=``
    is a parse error. A value that is already quoted, a sweep (``glob(...)``) or a
    comma list is left as typed.
    """
    from hydra.core.override_parser.types import Quote, QuotedString

    quoted = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if (
            sep
            and key.lstrip("+") == "ckpt_path"
            and _NEEDS_QUOTES.search(value)
            and not _SWEEP_SYNTAX.search(value)
        ):
            arg = f"{key}={QuotedString(text=value, quote=Quote.double).with_quotes()}"
        quoted.append(arg)
    return quoted


def user_message(error: BaseException) -> UserError | None:
    """The UserError behind ``error``, also when a DDP worker raised it in another process."""
    if isinstance(error, UserError):
        return error
    text = str(error)
    match = re.search(r"litpredict\.errors\.\w+: (.*)", text, re.DOTALL)
    if match:
        problem, _, fix = match.group(1).strip().partition("\n  fix: ")
        return UserError(problem.strip(), fix.strip() or None)
    return None


# torch's words for data that does not fit the model, and what to do about it.
_DATA_MISFIT = re.compile(
    r"shapes cannot be multiplied|size mismatch|must be equal to input_size|expected input"
    r"|to have \d+ channels|stack expects each tensor to be equal size|Expected .*dimension",
    re.IGNORECASE,
)
DATA_MISFIT_FIX = (
    "the data does not fit the model: check the number of features, channels or the image "
    "size of the datamodule against the model (e.g. datamodule.image_size=32, model.input_dim)"
)


def describe(error: BaseException, lines: int = 8) -> str:
    """A few lines naming an unexpected error; for a DDP worker's error, the worker's own."""
    text = str(error).strip()
    if "Traceback (most recent call last)" in text:  # raised in a spawned DDP worker
        rank = re.search(r"Process (\d+) terminated", text)
        last = [line for line in text.splitlines() if line.strip()][-1].strip()
        text = f"rank {rank.group(1) if rank else '?'} failed: {last}"
    else:
        kept = text.splitlines()
        body = "\n".join(kept[:lines]) + ("\n..." if len(kept) > lines else "")
        text = f"{type(error).__name__}: {body}"
    if _DATA_MISFIT.search(text):
        text += f"\n  fix: {DATA_MISFIT_FIX}"
    return text


class CheckOutputDir(Callback):
    """Fails early, with a message, when the run or sweep directory cannot be written.

    Hydra creates it before litpredict's code runs and would show a traceback.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _writable(config.hydra.sweep.dir, "hydra.sweep.dir")


def _writable(directory: str, key: str) -> None:
    """Create ``directory`` and a file in it, then remove what was created."""
    path = Path(str(directory)).absolute()
    created = [p for p in [path, *path.parents] if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".litpredict-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        print(
            f"litpredict: error: the output directory {str(path)!r} cannot be written "
            f"({err.strerror})\n  fix: pass {key}=DIR of a writable place "
            "(or set LITPREDICT_OUTPUTS)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE) from None
    for folder in created:  # Hydra makes them again when a job starts
        folder.rmdir()


def _raise_interrupt(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    # Spawned DDP workers are ours to stop; they would otherwise keep writing shards.
    for child in multiprocessing.active_children():
        child.terminate()
    raise RunInterrupted(name)


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`RunInterrupted`, so status and cleanup code runs."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _raise_interrupt)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_reporting_errors(job: Job, body: Callable[[], T]) -> T:
    """Run ``body``; turn any error into a short stderr message and an exit code."""
    try:
        return body()
    except BaseException as error:
        if isinstance(error, SystemExit) and error.code in (0, None):
            raise
        log.debug("traceback", exc_info=True)
        interrupted = isinstance(error, (RunInterrupted, KeyboardInterrupt))
        known = user_message(error)
        where = f" (details: {job.log_file})" if job.log_file else ""
        if interrupted:
            message, code = (
                f"interrupted{where}; run the same command again to complete it",
                EXIT_INTERRUPTED,
            )
        elif known is not None:
            message, code = f"{known.message}", EXIT_USAGE
        else:
            message, code = f"{describe(error)}{where}", EXIT_ERROR
        if job.multirun and not isinstance(error, KeyboardInterrupt):
            raise RuntimeError(message) from None
        print(f"litpredict: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(code) from None
