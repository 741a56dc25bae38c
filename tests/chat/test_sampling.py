import math

import pytest

from localchat.chat.sampling import PRESETS, RANGES, SamplingParams, preset
from localchat.errors import InvalidSetting


def test_defaults_and_presets_are_valid() -> None:
    assert SamplingParams().seed is None
    assert set(PRESETS) >= {"precise", "balanced", "creative"}
    assert preset("precise").temperature < preset("balanced").temperature < preset("creative").temperature


SHOWN = {
    "temperature": "0 and 5",
    "top_p": "0 and 1",
    "top_k": "0 and 1,000",
    "min_p": "0 and 1",
    "repeat_penalty": "0.5 and 2",
    "max_tokens": "1 and 1,000,000",
    "seed": "0 and 4,294,967,294",
}


@pytest.mark.parametrize("field", sorted(RANGES))
def test_out_of_range_names_field_and_range(field: str) -> None:
    low, high = RANGES[field]
    for bad in (low - 1, high + 1):
        with pytest.raises(InvalidSetting) as error:
            SamplingParams(**{field: bad})
        assert error.value.message.startswith(field)
        assert f"between {SHOWN[field]} (got" in error.value.message  # as people write numbers: no 1e+06


def test_rejects_nan_fractions_and_bools() -> None:
    with pytest.raises(InvalidSetting, match="temperature"):
        SamplingParams(temperature=math.nan)
    with pytest.raises(InvalidSetting, match="whole number"):
        SamplingParams(top_k=1.5)
    with pytest.raises(InvalidSetting, match="top_p"):
        SamplingParams(top_p=True)


def test_overrides_keep_unset_values_and_reject_unknown_names() -> None:
    params = preset("creative").with_overrides(temperature=0.0, seed=None)
    assert params.temperature == 0.0 and params.top_k == preset("creative").top_k
    with pytest.raises(InvalidSetting, match="unknown sampling setting 'temp'"):
        params.with_overrides(temp=1)
    with pytest.raises(InvalidSetting, match="unknown preset"):
        preset("wild")


def test_settings_file_defaults_start_from_a_preset() -> None:
    from localchat.chat.sampling import from_settings

    assert from_settings({}) == preset("balanced")
    configured = from_settings({"preset": "creative", "max_tokens": 64})
    assert configured.temperature == preset("creative").temperature and configured.max_tokens == 64
    with pytest.raises(InvalidSetting, match=r"settings: sampling\.temperature must be between 0 and 5"):
        from_settings({"temperature": 7})


def test_a_replys_settings_read_in_one_line() -> None:
    assert SamplingParams(temperature=0).summary() == "greedy"
    assert SamplingParams().summary() == "temp 0.7, top-p 0.95, top-k 40, min-p 0.05"
    assert SamplingParams(repeat_penalty=1.1, seed=7).summary().endswith("repeat 1.1, seed 7")
