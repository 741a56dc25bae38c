"""Frame pacing of a streaming reply and the buffer between the worker thread and the UI (pure logic)."""

from __future__ import annotations

import threading

import pytest

from localchat.tui.pacing import FASTEST_S, SLOWEST_S, FramePacer, ReplyBuffer, contended


@pytest.mark.parametrize(
    ("threads", "cores", "all_on_gpu", "expected"),
    [(2, 2, False, True), (8, 8, False, True), (4, 8, False, False), (2, 2, True, False)],
)
def test_contended_when_llama_cpp_threads_fill_every_core(threads, cores, all_on_gpu, expected) -> None:
    assert contended(threads, cores, all_on_gpu) is expected


def run_frames(pacer: FramePacer, frame_cost_s: float, frames: int = 40) -> list[float]:
    """A UI whose every frame costs `frame_cost_s` of CPU, drawing as soon as the pacer allows."""
    now, cpu, waits = 100.0, 5.0, []
    for _ in range(frames):
        pacer.frame(now, cpu)
        cpu += frame_cost_s
        now += pacer.delay(now)
        waits.append(pacer.wait_s)
    return waits


def test_first_text_of_a_reply_is_drawn_at_once_then_frames_are_spaced() -> None:
    pacer = FramePacer()
    pacer.start_reply(contended=True)
    assert pacer.delay(50.0) == 0.0
    pacer.frame(50.0, 1.0)
    assert pacer.delay(50.04) == pytest.approx(FASTEST_S - 0.04)
    assert pacer.delay(51.0) == 0.0  # text that comes after a pause is drawn at once


def test_with_a_core_to_spare_the_app_draws_at_full_rate() -> None:
    pacer = FramePacer()
    pacer.start_reply(contended=False)
    assert set(run_frames(pacer, frame_cost_s=0.05)) == {FASTEST_S}


def test_on_busy_cores_the_ui_converges_on_its_share_of_a_core() -> None:
    pacer = FramePacer()
    pacer.start_reply(contended=True)
    waits = run_frames(pacer, frame_cost_s=0.005)
    assert waits[-1] == pytest.approx(0.005 / pacer.share, rel=0.02)  # 5 ms a frame → one frame per 0.33 s
    assert max(waits) <= SLOWEST_S


def test_costly_frames_slow_down_to_one_a_second_and_cheap_ones_speed_up() -> None:
    pacer = FramePacer()
    pacer.start_reply(contended=True)
    assert run_frames(pacer, frame_cost_s=0.040)[-1] == SLOWEST_S
    pacer.start_reply(contended=True)
    assert pacer.wait_s == SLOWEST_S  # the next reply starts where this screen's cost left it
    assert run_frames(pacer, frame_cost_s=0.0001)[-1] == FASTEST_S
    pacer.start_reply(contended=False)
    assert pacer.wait_s == FASTEST_S and pacer.frames == 0


def test_reply_buffer_wakes_the_ui_once_per_batch() -> None:
    buffer = ReplyBuffer()
    assert buffer.put("Hel", 1) is True
    assert buffer.put("lo", 2) is False
    assert buffer.take() == ("Hello", 2)
    assert buffer.take() == ("", 2)
    assert buffer.put("!", 3) is True


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
        taken.append(buffer.take()[0])
    thread.join()
    taken.append(buffer.take()[0])
    assert "".join(taken) == "".join(f"{i}," for i in range(5000))
