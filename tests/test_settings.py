"""One settings schema: the Gradio panel, the Streamlit sidebar, the CLI, validation and the OpenAI mapping all
come from minicpmv_app.settings.SCHEMA."""

import argparse

import gradio as gr
import pytest

from minicpmv_app import cli
from minicpmv_app import settings as schema
from minicpmv_app.backends.openai_api import EXTRA_FIELDS, STANDARD_FIELDS
from minicpmv_app.errors import InvalidInputError
from minicpmv_app.presets import resolve
from minicpmv_app.ui.gradio_common import settings_panel
from minicpmv_app.ui.i18n import Labels


def test_the_gradio_panel_is_the_schema_in_order():
    with gr.Blocks():
        panel = settings_panel(Labels("en"), {"temperature": 0.3})
    # A model without knobs: the decoding settings only.
    assert panel.names == tuple(s.name for s in schema.SCHEMA if not s.knob)
    assert len(panel.components) == len(panel.names)
    for setting, component in zip(schema.SCHEMA, panel.components):
        if setting.kind in ("float", "int"):
            assert isinstance(component, gr.Slider)
            assert (component.minimum, component.maximum, component.step) == (
                setting.minimum, setting.maximum, setting.step)
            assert component.interactive == (schema.SAMPLING in setting.modes)
    values = dict(zip(schema.NAMES, (c.value for c in panel.components)))
    assert values["temperature"] == 0.3 and values["top_p"] == schema.PRESETS[schema.SAMPLING]["top_p"]
    assert values["decode_type"] == schema.SAMPLING


def test_the_panel_shows_only_the_models_knobs_with_the_models_defaults():
    with gr.Blocks():
        panel = settings_panel(Labels("en"), {}, {"enable_thinking": False, "downsample_mode": "16x", "max_slice_nums": 36})
    assert panel.names[-3:] == ("enable_thinking", "downsample_mode", "max_slice_nums")
    thinking, detail, slices = panel.components[-3:]
    assert isinstance(thinking, gr.Checkbox) and thinking.value is False
    assert isinstance(detail, gr.Radio) and detail.value == "16x"
    assert isinstance(slices, gr.Slider) and slices.value == 36
    values = [c.value for c in panel.components]
    assert panel.read(values)["max_slice_nums"] == 36 and "stack_frames" not in panel.read(values)


def test_a_knob_the_model_does_not_take_is_refused_with_its_name():
    with pytest.raises(InvalidInputError) as caught:
        resolve(max_slice_nums=4, knobs={"enable_thinking": False})
    assert caught.value.key == "knob_not_taken" and "max_slice_nums" in str(caught.value)
    assert resolve(enable_thinking="true", knobs={"enable_thinking": False}).knobs == {"enable_thinking": True}
    with pytest.raises(InvalidInputError, match="downsample_mode must be one of 16x, 4x"):
        resolve(downsample_mode="8x", knobs={"downsample_mode": "16x"})


def test_panel_values_become_one_settings_value():
    values = ["Beam Search", 0.7, 0.8, 100, 1.2, 4, 32, "  Be brief.  "]
    settings = schema.from_values(values)
    assert settings == {"decode_type": "Beam Search", "temperature": 0.7, "top_p": 0.8, "top_k": 100,
                        "repetition_penalty": 1.2, "num_beams": 4, "max_new_tokens": 32, "system_prompt": "Be brief."}
    resolved = resolve(**settings)
    assert resolved.params == {"num_beams": 4, "repetition_penalty": 1.2} and resolved.max_new_tokens == 32


def test_the_command_line_takes_each_setting_and_checks_it():
    parser = cli.settings_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--temperature", "0.3", "--max-new-tokens", "64", "--decode-type", "Beam Search"])
    assert cli.settings_defaults(args) == {"temperature": 0.3, "max_new_tokens": 64, "decode_type": "Beam Search"}
    with pytest.raises(SystemExit, match="top_p=3.0 is out of range; use a value from 0 to 1"):
        cli.settings_defaults(parser.parse_args(["--top-p", "3"]))


def test_the_demo_starts_with_the_command_lines_settings(tiny_chat):
    from minicpmv_app.ui.gradio_26 import build_demo

    demo = build_demo(tiny_chat, lang="en", defaults={"max_new_tokens": 77, "top_k": 5})
    sliders = {c["props"].get("label"): c["props"].get("value") for c in demo.config["components"]
               if c.get("type") == "slider"}
    assert sliders["Max new tokens"] == 77 and sliders["Top k"] == 5


@pytest.mark.parametrize("name, value", [("temperature", 11), ("top_p", -0.1), ("num_beams", 0), ("max_new_tokens", 0)])
def test_validation_names_the_range(name, value):
    with pytest.raises(InvalidInputError) as caught:
        schema.BY_NAME[name].check(value)
    assert caught.value.key == "setting_out_of_range" and f"{name}=" in str(caught.value)


def test_the_openai_mapping_comes_from_the_schema():
    assert set(EXTRA_FIELDS) == {"top_k", "repetition_penalty", "chat_template_kwargs", "mm_processor_kwargs"}
    assert STANDARD_FIELDS == {"temperature": "temperature", "top_p": "top_p"}
