"""The sampling lab (F5) driven as a person would, with the real engine and model: the chart at a token, keys
that nudge the settings and reshape it, and "regenerate from here"."""

from __future__ import annotations

from localchat.tui.sampling_panel import SamplingPanel, shaped_at
from tests.tui.conftest import SIZE, model_ready, send, views, wait_for, wait_until_replied


def lab_text(app) -> str:
    return "\n".join(str(app.query_one(f"#lab-{part}").render()) for part in ("settings", "position", "chart"))


async def test_the_lab_shows_a_replys_candidates_and_reshapes_them_by_key(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await send(pilot, "Write one sentence about the sea.")
        await pilot.press("f5")
        lab = app.query_one(SamplingPanel)
        assert lab.display and app.focused is lab
        await wait_for(pilot, lambda: lab.scores is not None)
        reply = app.store.branch(app.conversation.id)[-1]
        assert "".join(t.token for t in lab.scores.tokens) == reply.content
        assert f"token 1 of {len(lab.scores.tokens)}" in lab_text(app) and "▶" in lab_text(app)
        await pilot.press("right", "right")
        assert lab.cursor == 2 and "token 3 of" in lab_text(app)

        # Keys nudge this chat's settings (stored), and the chart's right column follows them.
        before = shaped_at(lab.scores, 2, lab.sampling()).probabilities
        await pilot.press("T", "T", "T")
        assert app.store.conversation(app.conversation.id).sampling["temperature"] == 1.0
        assert "temperature 1.00 " in lab_text(app)
        after = shaped_at(lab.scores, 2, lab.sampling()).probabilities
        assert after != before
        await pilot.press("k", "k")  # top-k 40 → 30
        assert app.session.sampling_for(app.conversation).top_k == 30
        await pilot.press("1")  # the "precise" preset
        assert app.session.sampling_for(app.conversation).temperature == 0.2
        await pilot.press("t", "t", "t")  # down to greedy: one candidate keeps it all
        shaped = shaped_at(lab.scores, 2, lab.sampling()).probabilities
        assert app.session.sampling_for(app.conversation).temperature == 0 and sorted(shaped)[-1] == 1.0
        await pilot.press("escape")
        assert app.focused is app.chat.composer and lab.display


async def test_regenerate_from_a_token_keeps_the_reply_before_it(make_app) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await send(pilot, "Write one sentence about the sea.")
        original = app.store.branch(app.conversation.id)[-1]
        await pilot.press("f5")
        lab = app.query_one(SamplingPanel)
        await wait_for(pilot, lambda: lab.scores is not None)
        await pilot.press(*["right"] * 5, "T", "T", "T", "T", "T")  # token 6, hotter
        kept = "".join(t.token for t in lab.scores.tokens[:5])
        await pilot.press("g")
        await wait_until_replied(pilot, 2)
        again = app.store.branch(app.conversation.id)[-1]
        assert again.id != original.id and again.parent_id == original.parent_id
        assert again.content.startswith(kept) and views(app)[-1].text == again.content
        assert again.stats["sampling"]["temperature"] == 1.2
        # The composer has the focus again (typing goes there); the lab follows to the new reply, F5 goes back.
        assert app.focused is app.chat.composer
        await wait_for(pilot, lambda: lab.message_id == again.id and lab.scores is not None)
        await pilot.press("f5")
        assert app.focused is lab
        await pilot.press("f5")  # from the panel: closes it
        assert not lab.display and app.focused is app.chat.composer


async def test_text_typed_into_the_lab_goes_to_the_composer(make_app) -> None:
    """Keys the lab has no use for are not lost: they are text for the composer (t, k... stay the lab's)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await model_ready(pilot)
        await pilot.press("f5")
        assert app.focused is app.query_one(SamplingPanel)
        await pilot.press("h", "e", "l", "l", "o")
        assert app.focused is app.chat.composer and app.chat.composer.text == "hello"
