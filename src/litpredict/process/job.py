"""The Hydra job a run belongs to: its directory, its command-line overrides, its mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def is_multirun(hydra_config: Any) -> bool:
    """Whether ``hydra_config`` (``HydraConfig.get()`` or ``config.hydra``) is a ``-m`` job.

    The one test used everywhere: ``mode`` is a ``RunMode`` in the job and may be its name
    (a string) in a config a callback receives.
    """
    mode = getattr(hydra_config, "mode", None)
    return getattr(mode, "name", mode) == "MULTIRUN"


@dataclass
class Job:
    run_dir: Path
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    log_file: Path | None = None

    @classmethod
    def from_hydra(cls) -> Job:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        from litpredict.process.console import route_to_log

        hydra = HydraConfig.get()
        run_dir = Path(hydra.runtime.output_dir)
        route_to_log()  # warnings and Lightning's records through the logging config only
        # As typed, unresolved: a quoted file name's escaped ``\${`` stays escaped (the
        # manifest records overrides that a shell can repeat; leak${oc.env:VAR}.ckpt is a name)
        typed = OmegaConf.to_container(hydra.overrides.task, resolve=False)
        return cls(
            run_dir=run_dir,
            overrides=[str(o) for o in typed],
            multirun=is_multirun(hydra),
            log_file=run_dir / f"{hydra.job.name}.log",
        )

    def explicit_keys(self, prefix: str) -> set[str]:
        """Keys under ``prefix.`` that the command line sets (``model.hidden_size=64``)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(self.overrides)
        start = f"{prefix}."
        return {o.key_or_group[len(start) :] for o in parsed if o.key_or_group.startswith(start)}
