"""The data path: masks, epoch order, random access, packing and exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from training.data import IGNORE, TokenStream, encode, epoch_order
from training.errors import TrainingError
from training.sources import FileSource
from training.testing import texts_of, toy_chat_rows, train_tokenizer


def export(path: Path, rows: list[dict[str, Any]], split: str = "train") -> Path:
    with path.open("wb") as f:
        for i, row in enumerate(rows):
            f.write(orjson.dumps({"id": f"id{i:03d}", "split": split, "component": "c", **row}))
            f.write(b"\n")
    return path


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    rows = toy_chat_rows(8)
    return train_tokenizer([*texts_of(rows), "question answer plain words here"])


def decoded(tokenizer: Any, ids: list[int], labels: list[int]) -> str:
    return tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE])


def test_chat_loss_is_on_assistant_turns_only(tokenizer: Any) -> None:
    example = toy_chat_rows(1)[0]
    enc = encode(example, tokenizer, 64, completion_only=True)
    assert decoded(tokenizer, enc.input_ids, enc.labels) == "the apple is red . </s>"
    full = encode(example, tokenizer, 64, completion_only=False)
    assert full.labels == full.input_ids


def test_prompt_completion_loss_is_on_the_completion_and_eos(tokenizer: Any) -> None:
    enc = encode({"prompt": "question ? answer :", "completion": " red"}, tokenizer, 64)
    assert decoded(tokenizer, enc.input_ids, enc.labels) == "red </s>"
    assert enc.input_ids[-1] == tokenizer.eos_token_id
    text = encode({"text": "plain words here"}, tokenizer, 64)
    assert text.labels == text.input_ids
    assert len(encode({"text": "plain words here"}, tokenizer, 2).input_ids) == 2


def test_epoch_order_is_the_mix_order_then_seeded_reshuffles() -> None:
    assert epoch_order(5, 0, seed=7).tolist() == [0, 1, 2, 3, 4]
    one = epoch_order(50, 1, seed=7).tolist()
    assert sorted(one) == list(range(50)) and one != list(range(50))
    assert epoch_order(50, 1, seed=7).tolist() == one
    assert epoch_order(50, 2, seed=7).tolist() != one
    assert epoch_order(50, 1, seed=8).tolist() != one


def test_file_source_reads_by_offset_in_any_order(tmp_path: Path) -> None:
    rows = [{"text": f"row {i}"} for i in range(10)]
    path = export(tmp_path / "mix.jsonl", rows)
    src = FileSource(path)
    assert src.ids("train") == [f"id{i:03d}" for i in range(10)]
    assert [r["text"] for r in src.fetch("train", [7, 2, 9])] == ["row 7", "row 2", "row 9"]
    assert src.ids("val") == []


def test_file_source_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": \n')
    with pytest.raises(TrainingError, match=r"bad.jsonl:2: not valid JSON"):
        FileSource(path)
    path.write_text('{"id": "a", "body": "x"}\n')
    with pytest.raises(TrainingError, match=r"bad.jsonl:1: an example needs"):
        FileSource(path)
    with pytest.raises(TrainingError, match="does not exist"):
        FileSource(tmp_path / "missing.jsonl")


def stream(src: FileSource, tokenizer: Any, total: int, start: int = 0, **kw: Any) -> TokenStream:
    options: dict[str, Any] = {"max_length": 64, "packing": False, "completion_only": True}
    options.update(kw)
    return TokenStream(src, "train", tokenizer, total_items=total, start_item=start, **options)


def test_stream_runs_epochs_and_resumes_exactly(tmp_path: Path, tokenizer: Any) -> None:
    src = FileSource(export(tmp_path / "mix.jsonl", toy_chat_rows(6)))
    full = list(stream(src, tokenizer, total=15))
    assert [i.index for i in full] == list(range(15))
    assert [i.members[0].position for i in full[:6]] == list(range(6))
    assert [i.members[0].epoch for i in full] == [0] * 6 + [1] * 6 + [2] * 3
    assert sorted(i.members[0].position for i in full[6:12]) == list(range(6))
    resumed = list(stream(src, tokenizer, total=15, start=8))
    assert [(i.index, i.members, i.input_ids) for i in resumed] == [
        (i.index, i.members, i.input_ids) for i in full[8:]
    ]


def test_packing_fills_sequences_and_resumes_exactly(tmp_path: Path, tokenizer: Any) -> None:
    src = FileSource(export(tmp_path / "mix.jsonl", toy_chat_rows(8)))
    packed = stream(src, tokenizer, total=100, max_length=48, packing=True)
    per_epoch = packed.items_per_epoch()
    assert 1 < per_epoch < 8
    items = list(stream(src, tokenizer, total=2 * per_epoch, max_length=48, packing=True))
    assert all(len(i.input_ids) <= 48 for i in items)
    assert [m.position for i in items[:per_epoch] for m in i.members] == list(range(8))
    for item in items:
        assert len(item.input_ids) == sum(m.length for m in item.members)
        starts = [0]
        for m in item.members[:-1]:
            starts.append(starts[-1] + m.length)
        assert all(item.labels[s] == IGNORE for s in starts[1:])
    later = list(
        stream(
            src, tokenizer, total=2 * per_epoch, start=per_epoch + 1, max_length=48, packing=True
        )
    )
    assert [i.members for i in later] == [i.members for i in items[per_epoch + 1 :]]


class CountingSource(FileSource):
    """Counts the rows read, so a rank that reads others' rows shows."""

    fetched = 0

    def fetch(self, split: str, indices: Any) -> list[dict[str, Any]]:
        CountingSource.fetched += len(indices)
        return super().fetch(split, indices)


@pytest.mark.parametrize("packing", [False, True], ids=["unpacked", "packed"])
def test_ranks_shard_one_global_sequence(tmp_path: Path, tokenizer: Any, packing: bool) -> None:
    """Rank r takes the r-th block of B in each run of W·B items.

    Together the ranks' items are the one-process sequence, from any start (a resume).
    """
    src = CountingSource(export(tmp_path / "mix.jsonl", toy_chat_rows(7)))
    opts: dict[str, Any] = {"packing": packing, "max_length": 48 if packing else 64}
    whole = list(stream(src, tokenizer, total=18, start=4, **opts))
    for start in (0, 4):
        shards = []
        for rank in (0, 1):
            CountingSource.fetched = 0
            s = stream(
                src,
                tokenizer,
                total=18,
                start=start,
                micro_batch=2,
                rank=rank,
                world_size=2,
                **opts,
            )
            s.report()  # the scan reads the split once
            CountingSource.fetched = 0
            shards.append(list(s))
            if not packing:  # a rank reads only its own rows
                assert CountingSource.fetched == len(shards[-1])
        assert all((i.index // 2) % 2 == r for r, items in enumerate(shards) for i in items)
        merged = sorted((i for items in shards for i in items), key=lambda i: i.index)
        assert [i.index for i in merged] == list(range(start, 18))
        if start == 4:
            assert [(i.index, i.members) for i in merged] == [(i.index, i.members) for i in whole]


def test_an_epochs_run_ends_on_a_whole_global_batch(tmp_path: Path, tokenizer: Any) -> None:
    from training import TrainConfig
    from training.run_folder import final_epoch_losses
    from training.trainer import plan_steps

    path = export(tmp_path / "mix.jsonl", toy_chat_rows(7))
    src = FileSource(path)
    config = TrainConfig(data_file=str(path), num_train_epochs=2, per_device_train_batch_size=2)
    assert plan_steps(config, stream(src, tokenizer, total=0)) == (7, 14)
    # 14 items at 4 per step: 4 steps, the last filled from the next epoch's order
    assert plan_steps(config, stream(src, tokenizer, total=0), 4) == (4, 16)
    losses = {(0, "a"): [1.0], (1, "a"): [2.0, 4.0], (2, "b"): [5.0]}
    assert final_epoch_losses(losses, config.to_dict()) == {"a": 3.0}
    assert final_epoch_losses(losses) == {"b": 5.0}
