"""Benchmark litpredict end to end against the plain-torch floor and the seed article's recipe.

Every approach runs as its own subprocess on the same ``.npy`` input and checkpoint:

- ``floor``: np.load (memory-mapped) -> torch slices -> forward -> np.save
- ``floor-load``: the same with a plain ``np.load``, which reads the whole file first (the
  issue's wording of the floor: "plain torch slicing, including np.load and np.save")
- ``loop``: TensorDataset + DataLoader (per-sample ``__getitem__`` + collate) -> forward -> cat
- ``article``: the seed article's recipe, TensorDataset + DataLoader + Trainer.predict + torch.cat
- ``litpredict``: the real command, ``python -m litpredict.predict datamodule=array_file ...``

Each workload runs at a small and a large size so that start-up (imports, checkpoint
loading, provenance) cancels out of the marginal cost per row::

    marginal time   = (work(large) - work(small)) / (large - small)
    marginal memory = (peak(large) - peak(small)) / (large - small)

``work`` is the time from the end of the imports to complete outputs, as each process
reports it (litpredict: the manifest's ``duration_s``). Importing torch and Lightning takes
5-8 s here and varies by tenths of a second, more than the whole marginal signal, so
wall times (also shown) are too noisy for the marginal. ``peak`` is the process tree's
resident memory, sampled every 20 ms until the outputs are complete; the interpreter's
exit, which touches ~100 MB whatever the data, is left out (and shown separately).

    python scripts/bench.py                          # everything, ~12 min on 2 cores
    python scripts/bench.py --quick                  # smoke run, ~1 min, no extra runs
    python scripts/bench.py --only linear,memory --out bench.md

Layout: ``measure`` (timing and RSS of one subprocess), ``inputs`` (data, checkpoints),
one module per approach (``floor``, ``loop``, ``article``, ``ours``: the real command),
``approaches`` (the approaches by name, and ``--worker``), ``workloads`` (sizes, repeats,
marginal rows), ``startup``, ``report`` (tables, targets, files), ``sections`` (what
``--only`` chooses from) and ``cli``.

To add a section (e.g. a sweep benchmark): a module with a ``run``, a ``table`` and its
``targets``, and one ``Section(...)`` line in ``sections.SECTIONS``. To add an approach: a
module with an ``Approach``, listed in ``approaches.APPROACHES``, then named in a workload.
"""
