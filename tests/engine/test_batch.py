"""The batch llama_decode reads, as BatchRows fills it: read back from the llama_batch struct itself."""

from __future__ import annotations

from collections.abc import Iterator

import llama_cpp as ll
import pytest

from localchat.engine.batch import BatchRows

ROWS = 8


@pytest.fixture
def rows() -> Iterator[BatchRows]:
    batch = ll.llama_batch_init(ROWS, 0, 1)
    try:
        yield BatchRows(batch, ROWS)
    finally:
        ll.llama_batch_free(batch)


def read(rows: BatchRows) -> list[tuple[int, int, int, int, int]]:
    """(token, position, wants logits, number of sequences, sequence) of each row in use."""
    b = rows.batch
    return [(b.token[i], b.pos[i], b.logits[i], b.n_seq_id[i], b.seq_id[i][0]) for i in range(b.n_tokens)]


def test_a_prompt_chunk_asks_logits_for_its_last_token_alone(rows: BatchRows) -> None:
    rows.fill([11, 12, 13], start=40, logits_from=None, last_logits=True)
    assert read(rows) == [(11, 40, 0, 1, 0), (12, 41, 0, 1, 0), (13, 42, 1, 1, 0)]


def test_a_chunk_that_is_not_the_prompts_last_asks_no_logits_and_a_shorter_one_leaves_no_flag_behind(
    rows: BatchRows,
) -> None:
    rows.fill([1] * ROWS, start=0, logits_from=2, last_logits=False)
    rows.fill([5, 6, 7, 8], start=8, logits_from=None, last_logits=False)
    assert read(rows) == [(5, 8, 0, 1, 0), (6, 9, 0, 1, 0), (7, 10, 0, 1, 0), (8, 11, 0, 1, 0)]


def test_a_scored_reply_asks_logits_from_its_first_position_on(rows: BatchRows) -> None:
    rows.fill([21, 22, 23, 24, 25], start=100, logits_from=102, last_logits=True)
    assert [r[2] for r in read(rows)] == [0, 0, 1, 1, 1]
    assert [r[1] for r in read(rows)] == [100, 101, 102, 103, 104]
