import pytest

from minicpmv_app import presets
from minicpmv_app.errors import InvalidInputError


def test_sampling_preset_matches_upstream():
    settings = presets.resolve("Sampling")
    assert settings.sampling
    assert dict(settings.params) == {"top_p": 0.8, "top_k": 100, "temperature": 0.7, "repetition_penalty": 1.05}


def test_beam_preset_matches_upstream():
    settings = presets.resolve("Beam Search")
    assert not settings.sampling
    assert dict(settings.params) == {"num_beams": 3, "repetition_penalty": 1.2}


def test_overrides_only_touch_keys_of_the_mode():
    beam = presets.resolve("Beam Search", num_beams=5, top_p=0.1)
    assert beam.params["num_beams"] == 5 and "top_p" not in beam.params
    sampling = presets.resolve("Sampling", num_beams=5, temperature=0.2)
    assert sampling.params["temperature"] == 0.2 and "num_beams" not in sampling.params


def test_upstream_sampling_flag_and_aliases():
    assert not presets.resolve(sampling=False).sampling
    assert presets.resolve("beam").decode_type == presets.BEAM_SEARCH
    assert presets.resolve(None).decode_type == presets.SAMPLING


def test_model_defaults_apply_under_user_overrides():
    defaults = {presets.SAMPLING: {"temperature": 0.6}}
    assert presets.resolve(model_defaults=defaults).params["temperature"] == 0.6
    assert presets.resolve(model_defaults=defaults, temperature=0.9).params["temperature"] == 0.9


def test_temperature_zero_means_nearly_greedy_not_an_error():
    assert presets.resolve("Sampling", temperature=0).params["temperature"] == presets.MIN_TEMPERATURE


def test_generate_kwargs_carry_mode_and_budget():
    kwargs = presets.resolve("Sampling", max_new_tokens=7).generate_kwargs()
    assert kwargs["do_sample"] is True and kwargs["max_new_tokens"] == 7


@pytest.mark.parametrize("bad", [dict(temperature="hot"), dict(top_p=1.5), dict(max_new_tokens=0)])
def test_bad_values_are_clear_errors(bad):
    with pytest.raises(InvalidInputError):
        presets.resolve("Sampling", **bad)


def test_unknown_decode_type():
    with pytest.raises(InvalidInputError, match="Sampling"):
        presets.resolve("Greedy-ish")
