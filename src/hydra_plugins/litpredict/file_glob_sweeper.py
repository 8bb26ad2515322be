"""Hydra's basic sweeper plus ``key=glob(PATTERN)`` over files, for sweeps over checkpoints.

Hydra's own ``glob()`` lists config-group choices; on a plain value (``ckpt_path``) it
finds none and launches nothing. Here a ``glob()`` on a key that is not a config group
expands to the matching files, in training order, each quoted so that names with
``=``, ``,`` or spaces reach the job intact. Group globs keep Hydra's meaning. A pattern
may name another override as ``${key}`` (``glob(runs/${experiment}/checkpoints/*.ckpt)``)
to sweep matched pairs instead of a product. A glob with no match is an error, not an
empty sweep. The full job list goes to ``<sweep dir>/jobs.json`` for the sweep summary.
When a ``ckpt_path`` glob matches checkpoints of several training runs, each job's folder
names the run (``3_<run>-last``) through a ``hydra.sweep.subdir`` override of the job.
"""

# No ``from __future__ import annotations``: Hydra's plugin scan runs this module before it is
# in sys.modules, and dataclasses then cannot resolve string annotations.
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override, Transformer, ValueType
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException, HydraException
from omegaconf import OmegaConf

from litpredict.process.errors import first_line
from litpredict.sweep.plan import predicts, write_plan

log = logging.getLogger(__name__)


@dataclass
class FileGlobSweeperConf:
    _target_: str = "hydra_plugins.litpredict.file_glob_sweeper.FileGlobSweeper"
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="file_glob", node=FileGlobSweeperConf, provider="litpredict"
)

CKPT_KEY = "ckpt_path"
SUBDIR_KEY = "hydra.sweep.subdir"
_LAUNCHER_LOG = "hydra._internal.core_plugins.basic_launcher"  # its "#3 : overrides" lines
Choice = tuple[str, Any]  # (the override as the job gets it, its plain value for ${key})
Job = dict[str, Choice]


def _bare(key: str) -> str:
    """``+experiment@pkg`` -> ``experiment``: how a pattern's ``${...}`` names a key."""
    return key.lstrip("+~").split("@")[0]


class SweepFailed(CompactHydraException):
    """Some jobs failed; Hydra prints this message alone and exits 1."""


class FileGlobSweeper(BasicSweeper):
    """BasicSweeper whose ``glob()`` also matches files; writes the job list to ``jobs.json``."""

    def __init__(self, max_batch_size: int | None, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self._expanded: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
        self._per_job_keys: set[str] = set()  # keys whose value follows the matched file

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        """BasicSweeper.sweep, except that a failed job no longer cancels the later batches,
        and the sweep ends with one message naming every failed job."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        self.overrides = self.split_arguments(overrides, self.max_batch_size)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns: list[Sequence[JobReturn]] = []
        failed: list[str] = []
        first = 0
        if predicts(self.config):  # each job prints its own line, with the progress
            logging.getLogger(_LAUNCHER_LOG).setLevel(logging.WARNING)
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(self._representatives(batch))
            results = self.launcher.launch(batch, initial_job_idx=first)
            for num, (job, result) in enumerate(zip(batch, results, strict=True), start=first):
                if result.status == JobStatus.FAILED:
                    failed.append(f"  #{num} {' '.join(job)}: {first_line(result._return_value)}")
            first += len(batch)
            returns.append(results)
        if failed:
            _final_summary(self.config)  # Hydra skips on_multirun_end (and its rebuild) now
            raise SweepFailed(
                f"{len(failed)} of {first} jobs failed (logs in their job directories under "
                f"{sweep_dir}):\n" + "\n".join(failed)
            )
        return returns

    def split_arguments(  # type: ignore[override]  # an instance method: it needs the loader
        self, overrides: list[Override], max_batch_size: int | None
    ) -> list[list[list[str]]]:
        from hydra_plugins.litpredict import _file_glob

        by_key: dict[str, Override] = {}  # command-line order; a repeated key keeps its place
        for override in overrides:
            by_key[override.get_key_element()] = override
        globs = {k: o for k, o in by_key.items() if self._is_file_glob(o)}
        self._per_job_keys = set(globs)
        fixed = {k: self._choices(o) for k, o in by_key.items() if k not in globs}

        # Product in command-line order, as BasicSweeper does; a glob that names a later
        # key as ${key} waits until that key has its values.
        jobs: list[Job] = [{}]
        done: set[str] = set()
        waiting = list(by_key)
        while waiting:
            ready = [
                k
                for k in waiting
                if k not in globs or set(_file_glob.references(_patterns(globs[k]))) <= done
            ]
            key = ready[0] if ready else waiting[0]  # unknown ${key}: expanding reports it
            waiting.remove(key)
            done.add(_bare(key))
            if key in fixed:
                jobs = [{**job, key: c} for job in jobs for c in fixed[key]]
            else:
                jobs = [{**job, key: c} for job in jobs for c in self._files(globs[key], job)]
        batches = [[job[key][0] for key in by_key] for job in jobs]
        ckpt_key = next((k for k in globs if _bare(k) == CKPT_KEY), None)
        subdirs = None
        if ckpt_key is not None and self._names_job_dirs():
            subdirs = _run_subdirs([job[ckpt_key][1] for job in jobs])
        if subdirs:
            batches = [[*b, subdir] for b, subdir in zip(batches, subdirs, strict=True)]
            self._per_job_keys.add(SUBDIR_KEY)
        self._write_plan(batches)
        if max_batch_size is None:
            return [batches]
        return list(self.split_overrides_to_chunks(batches, max_batch_size))

    def _representatives(self, batch: Sequence[Sequence[str]]) -> list[Sequence[str]]:
        """One job per distinct set of overrides other than file-glob values.

        Hydra validates a batch by composing every job's config up front, and the launcher
        composes each again: over hundreds of checkpoints that doubled the per-job cost of
        composition. Jobs that differ only in a matched file's path (a quoted string) and
        their folder's name compose alike, so one of them stands for all.
        """
        seen: set[tuple[str, ...]] = set()
        chosen = []
        for job in batch:
            shape = tuple(o for o in job if o.split("=", 1)[0] not in self._per_job_keys)
            if shape not in seen:
                seen.add(shape)
                chosen.append(job)
        return chosen

    def _names_job_dirs(self) -> bool:
        """Whether job folders are litpredict's ``${lp_job_dir:...}``, not the user's own."""
        sweep = OmegaConf.select(self.config, "hydra.sweep")
        subdir = OmegaConf.to_container(sweep, resolve=False).get("subdir") if sweep else None
        return subdir is None or "lp_job_dir:" in str(subdir)

    def _is_file_glob(self, override: Override) -> bool:
        if override.value_type != ValueType.GLOB_CHOICE_SWEEP:
            return False
        loader = self.hydra_context.config_loader
        repository = getattr(loader, "repository", None)
        if repository is not None:
            return not repository.group_exists(override.key_or_group)
        return not loader.get_group_options(override.key_or_group)

    @staticmethod
    def _choices(override: Override) -> list[Choice]:
        from hydra_plugins.litpredict._file_glob import FileGlobError, plain

        key = override.get_key_element()
        if not override.is_sweep_override():
            return [(f"{key}={override.get_value_element_as_str()}", override.value())]
        if not override.is_discrete_sweep():
            raise HydraException(
                f"{FileGlobSweeper.__name__} does not support sweep type: "
                f"{override.value_type.name}"
            )
        values = list(override.sweep_iterator())  # once: a shuffled sweep must not reshuffle
        if not values and isinstance(override._value, Glob):
            options = override.config_loader.get_group_options(override.key_or_group)
            raise FileGlobError(
                f"{override.input_line}: no option of config group "
                f"{override.key_or_group!r} matches; its options are {options}"
            )
        return [(f"{key}={Transformer.str(v)}", plain(v)) for v in values]

    def _files(self, override: Override, job: Job) -> list[Choice]:
        from hydra_plugins.litpredict import _file_glob

        values = {_bare(k): v for k, (_, v) in job.items()}
        glob: Glob = override._value
        include = [_file_glob.substitute(_file_glob.plain(p), values) for p in glob.include]
        exclude = [_file_glob.substitute(_file_glob.plain(p), values) for p in glob.exclude]
        signature = (tuple(include), tuple(exclude))
        if signature not in self._expanded:  # one glob per pattern, however many jobs share it
            self._expanded[signature] = _file_glob.expand(include, exclude)
        files = self._expanded[signature]
        if not files:
            shown = ", ".join(include) + (f" (exclude {', '.join(exclude)})" if exclude else "")
            raise _file_glob.FileGlobError(
                f"{override.input_line}: no file matches {shown} (working directory "
                f"{os.getcwd()}); check the path and quote the pattern for the shell, "
                f"e.g. -m '{override.key_or_group}=glob(\"runs/x/checkpoints/*.ckpt\")'"
            )
        key = override.get_key_element()
        return [(f"{key}={_file_glob.quote(path)}", path) for path in files]

    def _write_plan(self, batches: Sequence[Sequence[str]]) -> None:
        """The full job list, so a summary can show jobs that have not started yet."""
        path = write_plan(str(self.config.hydra.sweep.dir), batches)
        log.info("%d jobs; their list: %s", len(batches), path)


def _run_subdirs(paths: Sequence[str]) -> list[str] | None:
    """Per job, a ``hydra.sweep.subdir`` override naming the checkpoint's training run, when
    the checkpoints come from several runs (``runs/*/checkpoints/last.ckpt``): ``3_b-last``,
    not ``3_last``; else None. Only the sweeper sees every file, so it names each job's
    folder, numbered as the launcher numbers the job (its place in the plan)."""
    from hydra_plugins.litpredict._file_glob import quote, run_labels
    from litpredict.process.resolvers import job_dir_name

    labels = run_labels(paths)
    if not labels:
        return None
    names = (job_dir_name(num, path, labels[path]) for num, path in enumerate(paths))
    return [f"{SUBDIR_KEY}={quote(name)}" for name in names]


def _final_summary(config: Any) -> None:
    """The summary rebuilt from every job's files, plot included (jobs killed, too)."""
    if not predicts(config) or not Path(str(config.hydra.sweep.dir)).is_dir():
        return
    from litpredict.sweep.summary import write_summary

    try:
        write_summary(str(config.hydra.sweep.dir))
    except Exception as error:  # the failed jobs' message matters more
        log.warning("could not write the sweep summary: %s", error)


def _patterns(override: Override) -> list[str]:
    from hydra_plugins.litpredict._file_glob import plain

    glob: Glob = override._value
    return [str(plain(p)) for p in (*glob.include, *glob.exclude)]
