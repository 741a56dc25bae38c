"""Frame pacing of a streaming reply and the buffer between the worker thread and the UI (pure logic)."""

from __future__ import annotations

import threading

import pytest

from localchat.tui.pacing import CONTENDED_FRAME_S, FRAME_S, FramePacer, Pending, ReplyBuffer, contended


@pytest.mark.parametrize(
    ("threads", "cores", "all_on_gpu", "expected"),
    [(2, 2, False, True), (8, 8, False, True), (4, 8, False, False), (2, 2, True, False)],
)
def test_contended_when_llama_cpp_threads_fill_every_core(threads, cores, all_on_gpu, expected) -> None:
    assert contended(threads, cores, all_on_gpu) is expected


def test_frame_rates_busy_cores_at_least_8_a_second_a_spare_core_20() -> None:
    pacer = FramePacer()
    pacer.start_reply(contended=True)
    assert 1 / pacer.wait_s >= 8 and pacer.wait_s == CONTENDED_FRAME_S
    pacer.frame()
    assert pacer.frames == 1
    pacer.start_reply(contended=False)
    assert pacer.wait_s == FRAME_S and 1 / FRAME_S >= 20 and pacer.frames == 0


def test_reply_buffer_wakes_the_ui_once_per_batch() -> None:
    buffer = ReplyBuffer()
    assert buffer.put("Hel", 1) is True
    assert buffer.put("lo", 2) is False
    assert buffer.take() == Pending("Hello", "", 2)
    assert buffer.take() == Pending("", "", 2)
    assert buffer.put("!", 3) is True


def test_reply_buffer_keeps_reasoning_apart() -> None:
    buffer = ReplyBuffer()
    assert buffer.put("", 1, "Hm", 1, thinking=True) is True
    assert buffer.put("", 2, "m.", 2, thinking=True) is False
    assert buffer.take() == Pending("", "Hmm.", 2, 2, True)
    assert buffer.put("Yes", 3, "", 2) is True  # the answer began: no longer thinking
    assert buffer.take() == Pending("Yes", "", 3, 2, False)


def test_reply_buffer_loses_nothing_across_threads() -> None:
    buffer = ReplyBuffer()
    taken: list[str] = []
    done = threading.Event()

    def produce() -> None:
        for i in range(5000):
            buffer.put(f"{i},", i + 1)
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    while not done.is_set():
        taken.append(buffer.take().text)
    thread.join()
    taken.append(buffer.take().text)
    assert "".join(taken) == "".join(f"{i}," for i in range(5000))
