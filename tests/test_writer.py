"""The writer's parts on real files: shards, merge into dataset order, formats, metrics."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.csv
import pyarrow.parquet
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from litpredict.process.errors import DataError, PredictionError
from litpredict.writing import PredictionWriter, callback
from litpredict.writing import finalize as finalize_module
from litpredict.writing.finalize import finalize
from litpredict.writing.formats import FORMATS, column_names, publish, table_columns
from litpredict.writing.ids import checked_ids
from litpredict.writing.merge import merge_shards
from litpredict.writing.metrics import MetricMisfit, label_metrics
from litpredict.writing.outputs import split_outputs
from litpredict.writing.seen_indices import drop_seen_batch_indices
from litpredict.writing.shard_layout import SHARDS, DatasetMeta, read_shards
from litpredict.writing.shard_writer import ShardWriter


def write_shards(root, batches_per_rank, num_samples: int):
    """batches_per_rank: [[(indices, {key: array}), ...] per rank]."""
    for rank, batches in enumerate(batches_per_rank):
        shard = ShardWriter(root / f"rank{rank:05d}", header_rows=num_samples)
        for indices, arrays in batches:
            shard.append(np.asarray(indices), arrays)
        shard.close("tensor")
    return read_shards(root)


def strided(n: int, world: int, batch: int, values: np.ndarray):
    """What a 2-rank strided sampler gives each rank: interleaved, batched."""
    ranks = []
    for rank in range(world):
        mine = np.arange(rank, n, world)
        ranks.append(
            [
                (mine[i : i + batch], {"prediction": values[mine[i : i + batch]]})
                for i in range(0, len(mine), batch)
            ]
        )
    return ranks


@pytest.mark.parametrize("n", [1, 2, 7, 1001])
def test_merge_restores_dataset_order_across_ranks(tmp_path, n) -> None:
    values = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    shards = write_shards(tmp_path / "s", strided(n, 2, 4, values), n)
    merged = merge_shards(shards, n, tmp_path / "staging")
    np.testing.assert_array_equal(merged.arrays["prediction"], values)


def test_merge_drops_duplicates_from_a_padding_sampler(tmp_path) -> None:
    values = np.arange(5, dtype=np.float32).reshape(5, 1)
    # DistributedSampler pads 5 samples to 6 by repeating index 0 on rank 1.
    batches = [
        [([0, 2, 4], {"prediction": values[[0, 2, 4]]})],
        [([1, 3, 0], {"prediction": values[[1, 3, 0]]})],
    ]
    merged = merge_shards(write_shards(tmp_path / "s", batches, 5), 5, tmp_path / "staging")
    np.testing.assert_array_equal(merged.arrays["prediction"], values)


def test_merge_fails_loudly_when_a_sample_is_missing(tmp_path) -> None:
    values = np.arange(4, dtype=np.float32).reshape(4, 1)
    batches = [[([0, 1, 3], {"prediction": values[[0, 1, 3]]})]]
    with pytest.raises(
        PredictionError, match=r"1 of 4 samples have no prediction \(first: \[2\]\)"
    ):
        merge_shards(write_shards(tmp_path / "s", batches, 4), 4, tmp_path / "staging")


def test_merge_refuses_indices_outside_the_dataset(tmp_path) -> None:
    batches = [[([0, 9], {"prediction": np.zeros((2, 1), np.float32)})]]
    with pytest.raises(PredictionError, match="outside the dataset"):
        merge_shards(write_shards(tmp_path / "s", batches, 2), 2, tmp_path / "staging")


def test_a_shard_never_closed_is_an_error(tmp_path) -> None:
    shard = ShardWriter(tmp_path / "s" / "rank00000", header_rows=2)
    shard.append(np.arange(2), {"prediction": np.zeros((2, 1), np.float32)})
    with pytest.raises(PredictionError, match="never closed"):
        read_shards(tmp_path / "s")


def test_changing_layout_between_batches_is_an_error(tmp_path) -> None:
    shard = ShardWriter(tmp_path / "rank0", header_rows=4)
    shard.append(np.arange(2), {"prediction": np.zeros((2, 3), np.float32)})
    with pytest.raises(PredictionError, match="changed layout"):
        shard.append(np.arange(2, 4), {"prediction": np.zeros((2, 4), np.float32)})


def test_rows_must_match_the_batch(tmp_path) -> None:
    shard = ShardWriter(tmp_path / "rank0", header_rows=4)
    with pytest.raises(PredictionError, match="has 1 rows for a batch of 2"):
        shard.append(np.arange(2), {"prediction": np.zeros((1,), np.float32)})


def test_outputs_of_every_kind_split_into_keys() -> None:
    t = torch.zeros(2, 3)
    assert split_outputs(t) == ("tensor", {"prediction": t})
    kind, keys = split_outputs((t, t))
    assert kind == "tuple" and list(keys) == ["0", "1"]
    kind, keys = split_outputs({"mean": t, "std": t})
    assert kind == "dict" and list(keys) == ["mean", "std"]
    with pytest.raises(PredictionError, match="cannot name files"):
        split_outputs({"a/b": t})
    with pytest.raises(PredictionError, match="not tensors"):
        split_outputs([1.0, 2.0])


def staged_arrays(tmp_path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    staging = tmp_path / "staging"
    staging.mkdir()
    out = {}
    for key, array in arrays.items():
        np.save(staging / f"{key}.npy", array)
        out[key] = np.load(staging / f"{key}.npy", mmap_mode="r")
    return out


def read_back(fmt: str, run_dir, kind: str) -> dict[str, np.ndarray]:
    """Every format read back into {column or key: values}."""
    if fmt == "npy":
        if kind == "tensor":
            return {"prediction": np.load(run_dir / "predictions.npy")}
        return {p.stem: np.load(p) for p in (run_dir / "predictions").glob("*.npy")}
    if fmt == "pt":
        payload = torch.load(run_dir / "predictions.pt", weights_only=True)
        if kind == "tensor":
            return {"prediction": payload.numpy()}
        return {
            str(k): v.numpy()
            for k, v in (payload.items() if kind == "dict" else enumerate(payload))
        }
    reader = pyarrow.parquet.read_table if fmt == "parquet" else pyarrow.csv.read_csv
    table = reader(run_dir / f"predictions.{fmt}")
    assert table.column("index").to_pylist() == list(range(table.num_rows))
    return {name: table.column(name).to_numpy() for name in table.column_names}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("kind", ["tensor", "dict"])
def test_every_format_holds_the_same_values(tmp_path, fmt, kind) -> None:
    rng = np.random.default_rng(1)
    seq = rng.normal(size=(5, 2, 3)).astype(np.float32)
    arrays = {"prediction": seq} if kind == "tensor" else {"mean": seq, "label": np.arange(5)}
    ids = [f"img/{i}.png" for i in range(5)]
    run_dir = tmp_path / "run"
    staged = FORMATS[fmt](staged_arrays(tmp_path, arrays), kind, ids, tmp_path / "staging")
    publish(staged, run_dir)
    back = read_back(fmt, run_dir, kind)
    for key, array in arrays.items():
        if fmt in ("npy", "pt"):
            np.testing.assert_allclose(back[key], array, rtol=1e-6)
        else:
            columns = column_names(key, array.shape[1:])
            table = np.stack([back[c] for c in columns], axis=1).reshape(array.shape)
            np.testing.assert_allclose(table, array, rtol=1e-6)
    if fmt in ("npy", "pt"):
        assert (run_dir / "ids.txt").read_text().splitlines() == ids
    else:
        assert list(back["id"]) == ids


def test_metrics_follow_the_labels() -> None:
    classes = {"prediction": np.array([1, 2, 3, 3])}
    assert label_metrics(classes, "tensor", np.array([1, 2, 3, 0])) == {"accuracy": 0.75}
    scores = {"prediction": np.array([[0.9, 0.1], [0.2, 0.8]], np.float32)}
    assert label_metrics(scores, "tensor", np.array([0, 0])) == {"accuracy": 0.5}
    regression = {"prediction": np.array([[1.0], [3.0]], np.float32)}
    assert label_metrics(regression, "tensor", np.array([[0.0], [1.0]], np.float32)) == {
        "mse": 2.5,
        "mae": 1.5,
    }
    assert label_metrics(regression, "tensor", None) == {}


RNG = np.random.default_rng(5)
SCORES = RNG.normal(size=(6, 10)).astype(np.float32)  # a 10-class classifier's outputs
IDS = np.array([0, 3, 3, 9, 1, 2])  # class ids, as a predict_step with argmax gives
CLASS_LABELS = np.array([0, 3, 1, 9, 1, 4])
VALUES = RNG.normal(size=(6, 1)).astype(np.float32)  # a regressor's outputs

# case: (outputs, labels, the default metrics, words of the log line when there are none)
DEFAULT_CASES = {
    "class scores, class ids": (SCORES, CLASS_LABELS, ["accuracy"], None),
    "class ids, class ids": (IDS, CLASS_LABELS, ["accuracy"], None),
    "values, values": (VALUES, VALUES + 1, ["mse", "mae"], None),
    "an autoencoder's images against classes": (
        SCORES,
        RNG.random((6, 28, 28), dtype=np.float32),
        [],
        "labels of shape (N, 28, 28) do not fit outputs of shape (N, 10)",
    ),
    "a regressor against class labels": (
        VALUES,
        CLASS_LABELS,
        [],
        "labels span [0, 9], the outputs score classes [0, 1) only",
    ),
    "a label beyond the scores": (
        SCORES[:, :4],
        CLASS_LABELS,
        [],
        "labels span [0, 9], the outputs score classes [0, 4) only",
    ),
    "a negative class label": (IDS, CLASS_LABELS - 1, [], "class ids start at 0"),
    "real outputs against integer labels of their shape": (
        VALUES[:, 0],
        CLASS_LABELS,
        ["mse", "mae"],
        None,
    ),
    "integer outputs against real labels": (IDS, VALUES[:, 0], [], "the outputs are integers"),
}


@pytest.mark.parametrize("case", sorted(DEFAULT_CASES))
def test_the_default_metrics_only_where_they_fit(case, caplog) -> None:
    outputs, labels, names, why = DEFAULT_CASES[case]
    with caplog.at_level("INFO", logger="litpredict.writing.metrics"):
        metrics = label_metrics({"prediction": outputs}, "tensor", labels)
    assert sorted(metrics) == sorted(names)
    if why:
        assert f"no label metrics: labels of shape {_shape(labels)} do not fit" in caplog.text
        assert why in caplog.text
    else:
        assert "no label metrics" not in caplog.text


def _shape(array: np.ndarray) -> str:
    return str(("N", *array.shape[1:])).replace("'", "")


def test_the_default_metrics_are_the_right_numbers() -> None:
    metrics = label_metrics({"prediction": VALUES[:, 0]}, "tensor", CLASS_LABELS)
    diff = VALUES[:, 0].astype(np.float64) - CLASS_LABELS
    assert metrics == pytest.approx({"mse": np.mean(diff**2), "mae": np.mean(np.abs(diff))})
    scores = label_metrics({"prediction": SCORES}, "tensor", CLASS_LABELS)
    assert scores == pytest.approx({"accuracy": np.mean(SCORES.argmax(1) == CLASS_LABELS)})


# case: (outputs, labels, metrics named, words of the problem, words of the fix)
MISFIT_CASES = {
    "accuracy on an autoencoder's images": (
        SCORES,
        RNG.random((6, 28, 28), dtype=np.float32),
        ["accuracy"],
        "labels of shape (N, 28, 28) do not fit outputs of shape (N, 10)",
        "no metric fits",
    ),
    "accuracy on real-valued labels": (
        VALUES,
        VALUES,
        ["accuracy", "mse"],
        "['accuracy'] do not fit",
        "metrics=[mse,mae,rmse,r2]",
    ),
    "mse on class scores": (
        SCORES,
        CLASS_LABELS,
        ["mse"],
        "regression metrics need labels of the outputs' shape",
        "metrics=[accuracy,f1,precision,recall]",
    ),
    "f1 with a label beyond the scores": (
        SCORES[:, :4],
        CLASS_LABELS,
        ["f1"],
        "the outputs score classes [0, 4) only",
        "metrics=[]",
    ),
}


@pytest.mark.parametrize("case", sorted(MISFIT_CASES))
def test_a_named_metric_that_does_not_fit_is_an_error(case) -> None:
    outputs, labels, names, problem, fix = MISFIT_CASES[case]
    with pytest.raises(MetricMisfit) as caught:
        label_metrics({"prediction": outputs}, "tensor", labels, names)
    assert problem in caught.value.problem
    assert fix in caught.value.fix and "metrics=[]" in caught.value.fix


def test_named_metrics_of_both_kinds_where_both_fit_and_none_for_an_empty_list() -> None:
    metrics = label_metrics({"prediction": IDS}, "tensor", CLASS_LABELS, ["mae", "accuracy"])
    assert list(metrics) == ["mae", "accuracy"]
    assert metrics["accuracy"] == pytest.approx(np.mean(IDS == CLASS_LABELS))
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(IDS - CLASS_LABELS)))
    assert label_metrics({"prediction": IDS}, "tensor", CLASS_LABELS, []) == {}


def test_several_outputs_give_no_default_metric_and_refuse_a_named_one() -> None:
    outputs = {"logits": SCORES, "embedding": VALUES}
    assert label_metrics(outputs, "dict", CLASS_LABELS) == {}
    with pytest.raises(MetricMisfit) as caught:
        label_metrics(outputs, "dict", CLASS_LABELS, ["accuracy"])
    assert "need one tensor" in caught.value.problem and "logits, embedding" in caught.value.problem


class TinyRegressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 2)

    def predict_step(self, batch):
        return self.layer(batch[0])


def predict_with_writer(run_dir, n: int = 10, batch_size: int = 3):
    """A real single-process ``Trainer.predict`` through the writer: (trainer, model, x, y)."""
    torch.manual_seed(0)
    x, y = torch.randn(n, 3), torch.randn(n, 2)
    model = TinyRegressor()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        callbacks=[PredictionWriter(output_dir=str(run_dir))],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    trainer.predict(model, loader, return_predictions=False)
    return trainer, model, x, y


def test_the_writer_drops_lightnings_record_of_each_written_batch(tmp_path, monkeypatch) -> None:
    """Fails when a Lightning release moves ``seen_batch_indices`` (see seen_indices.py)."""
    found = []

    def spy(trainer, batch_idx, dataloader_idx):
        found.append(drop_seen_batch_indices(trainer, batch_idx, dataloader_idx))
        return found[-1]

    monkeypatch.setattr(callback, "drop_seen_batch_indices", spy)
    trainer, *_ = predict_with_writer(tmp_path / "run", n=10, batch_size=3)
    assert found == [True] * 4
    loader = trainer.predict_loop._combined_loader.flattened[0]
    assert loader.batch_sampler.seen_batch_indices == [None] * 4


def test_only_the_writer_is_called_per_batch_of_litpredicts_callbacks(tmp_path) -> None:
    """Lightning skips the batch hooks ``NoBatchHooks`` leaves out; they cost ~2.5 us a call."""
    from pytorch_lightning.profilers import SimpleProfiler

    from litpredict.process.console_callbacks import WhatRuns, WorkerLogging
    from litpredict.process.ranks import DestroyProcessGroupAtExit, SharedRunDirCheck

    others = [WhatRuns("m.ckpt", "Data"), WorkerLogging(), SharedRunDirCheck()]
    profiler, writer = SimpleProfiler(), PredictionWriter(output_dir=str(tmp_path / "run"))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        callbacks=[writer, *others],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        profiler=profiler,
    )
    trainer.callbacks.append(DestroyProcessGroupAtExit())
    loader = DataLoader(TensorDataset(torch.randn(10, 3)), batch_size=3)
    trainer.predict(TinyRegressor(), loader, return_predictions=False)
    called = [a for a in profiler.recorded_durations if a.startswith("[Callback]")]
    per_batch = sorted(a.split("]", 1)[1] for a in called if "predict_batch" in a)
    assert per_batch == [
        "PredictionWriter.on_predict_batch_end",
        "PredictionWriter.on_predict_batch_start",
    ]
    assert any("WhatRuns.on_predict_start" in a for a in called)  # other hooks still run
    assert writer.finalize()["num_predictions"] == 10


def test_the_lifecycle_clears_old_shards_and_finalizes_from_disk_alone(tmp_path) -> None:
    run_dir = tmp_path / "run"
    stale = run_dir / ".shards" / "rank00001"  # an unfinished run's shard: never closed
    stale.mkdir(parents=True)
    (stale / "prediction.bin").write_bytes(b"stale")
    _, model, x, y = predict_with_writer(run_dir)
    # A writer that never saw a batch, like the main process's under ddp_spawn.
    result = PredictionWriter(output_dir=str(run_dir)).finalize()
    with torch.no_grad():
        expected = model.layer(x).numpy()
    np.testing.assert_array_equal(np.load(run_dir / "predictions.npy"), expected)
    (output,) = result["outputs"]
    assert output["path"] == "predictions.npy"
    assert output["sha256"] == hashlib.sha256((run_dir / output["path"]).read_bytes()).hexdigest()
    assert result["num_predictions"] == 10
    assert result["metrics"]["mse"] == pytest.approx(float(((expected - y.numpy()) ** 2).mean()))
    assert sorted(p.name for p in run_dir.iterdir()) == ["predictions.npy"]
    json.dumps(result)  # what the manifest stores


ODD_IDS = ["tab\tid", 'comma, "quote"', "caf\u00e9 \U0001f600", "back\\slash", " lead", ""]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_ids_round_trip_through_the_shards_whatever_printable_characters(tmp_path, fmt) -> None:
    root = tmp_path / SHARDS
    n = len(ODD_IDS)
    write_shards(root, [[(np.arange(n), {"prediction": np.ones((n, 1), np.float32)})]], n)
    DatasetMeta(n, checked_ids(ODD_IDS, n)).write(root)
    finalize(tmp_path, fmt)
    if fmt in ("npy", "pt"):
        text = (tmp_path / "ids.txt").read_text(encoding="utf-8")
        assert text.split("\n") == [*ODD_IDS, ""]
    elif fmt == "parquet":
        table = pyarrow.parquet.read_table(tmp_path / "predictions.parquet")
        assert table.column("id").to_pylist() == ODD_IDS
    else:
        table = pyarrow.csv.read_csv(
            tmp_path / "predictions.csv",
            convert_options=pyarrow.csv.ConvertOptions(
                column_types={"id": pyarrow.string()}, strings_can_be_null=False
            ),
        )
        assert table.column("id").to_pylist() == ODD_IDS


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x85b", "a\u2028b", "a\u2029b", "a\x0cb"])
def test_ids_that_would_break_a_line_are_refused(bad) -> None:
    with pytest.raises(DataError, match="holds a line break"):
        checked_ids(["fine", bad], 2)


def test_ids_must_be_one_per_sample_when_recorded_and_when_finalized(tmp_path) -> None:
    with pytest.raises(DataError, match="2 sample ids for 3 samples"):
        checked_ids(["a", "b"], 3)
    root = tmp_path / SHARDS
    write_shards(root, [[(np.arange(3), {"prediction": np.ones((3, 1), np.float32)})]], 3)
    DatasetMeta(3, ["a", "b", "c"]).write(root)
    (root / "ids.json").write_text(json.dumps(["a", "b"]))  # a lost id
    with pytest.raises(PredictionError, match="2 sample ids were recorded for 3 samples"):
        finalize(tmp_path, "npy")
    assert not (tmp_path / "predictions.npy").exists()


@pytest.mark.parametrize(
    ("shapes", "column"),
    [
        ({"a": (2,), "a_1": ()}, "a_1"),
        ({"a_1": (), "a": (2,)}, "a_1"),
        ({"x": (2, 2), "x_1_0": ()}, "x_1_0"),
        ({"index": ()}, "index"),
        ({"id": (1,), "id_0": ()}, "id_0"),
    ],
)
def test_table_columns_never_collide(shapes, column) -> None:
    with pytest.raises(PredictionError, match=f"column '{column}'"):
        table_columns(shapes)


def test_table_columns_of_distinct_outputs() -> None:
    assert table_columns({"a": (2,), "b": (), "c_1": (1,)}) == ["a_0", "a_1", "b", "c_1_0"]


def test_outputs_hashed_under_staging_names_before_any_final_name(tmp_path, monkeypatch) -> None:
    root = tmp_path / SHARDS
    values = np.arange(8, dtype=np.float32).reshape(8, 1)
    write_shards(root, [[(np.arange(0, 8, 2), {"prediction": values[::2]})],
                        [(np.arange(1, 8, 2), {"prediction": values[1::2]})]], 8)  # fmt: skip
    DatasetMeta(8, None).write(root)
    hashed = []
    real_sha256 = finalize_module.sha256_file

    def sha256_file(path):
        hashed.append(path)
        assert not list(tmp_path.glob("predictions*")), "a final name before hashing"
        return real_sha256(path)

    monkeypatch.setattr(finalize_module, "sha256_file", sha256_file)
    result = finalize(tmp_path, "parquet")
    assert hashed and all(".staging" in str(p) for p in hashed)
    (output,) = result["outputs"]
    digest = hashlib.sha256((tmp_path / "predictions.parquet").read_bytes()).hexdigest()
    assert output["sha256"] == digest


def test_the_merge_reserves_the_blocks_of_its_files(tmp_path) -> None:
    root = tmp_path / SHARDS
    values = np.arange(4000, dtype=np.float32).reshape(1000, 4)
    shards = write_shards(root, strided(1000, 2, 64, values), 1000)
    merged = merge_shards(shards, 1000, tmp_path / "staging")
    staged = tmp_path / "staging" / "prediction.npy"
    assert staged.stat().st_blocks * 512 >= staged.stat().st_size  # not a sparse file
    np.testing.assert_array_equal(merged.arrays["prediction"], values)
