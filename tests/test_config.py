"""Configuration: defaults work, bad values are rejected with key, value and what is allowed."""

import pytest

from inspector.core.config import Config, load_config, load_recipe, save_config
from inspector.core.errors import ConfigError


def test_defaults_round_trip(tmp_path):
    p = tmp_path / "c.toml"
    save_config(Config(), p)
    assert load_config(p) == Config()


@pytest.mark.parametrize("toml, key, allowed", [
    ("[recipe]\nfail_conf = 1.5", "recipe.fail_conf", "less than or equal to 1"),
    ("[recipe]\nreview_conf = -0.1", "recipe.review_conf", "greater than or equal to 0"),
    ("[recipe]\nfail_conf = 0.3\nreview_conf = 0.6", "recipe", "must not be above fail_conf"),
    ("[recipe]\nroi = [0.5, 0.5, 0.2, 0.9]", "recipe.roi", "fractions"),
    ("[model]\nimgsz = 333", "model.imgsz", "multiple of 32"),
    ("[model]\nbackend = \"cuda\"", "model.backend", "auto"),
    ("[storage]\nsave_images = \"some\"", "storage.save_images", "all"),
    ("[run]\nmode = \"fast\"", "run.mode", "part"),
    ("[run]\nqueue_size = 0", "run.queue_size", "greater than or equal to 1"),
    ("[recipe]\nfail_cnf = 0.5", "recipe.fail_cnf", "unknown key"),
    ("[camera]\nread_timeout_s = \"soon\"", "camera.read_timeout_s", "number"),
])
def test_bad_values_name_key_value_and_rule(tmp_path, toml, key, allowed):
    p = tmp_path / "bad.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert key in msg and allowed in msg, msg


@pytest.mark.parametrize("content, fragment", [
    (None, "not found"),
    ("[recipe\nx=1", "not valid TOML"),
    (b"\xff\xfe\x00", "not valid TOML"),
])
def test_unreadable_files(tmp_path, content, fragment):
    p = tmp_path / "c.toml"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load_config(p)


def test_recipe_file_top_level_or_table(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text("name = \"tight\"\nfail_conf = 0.4\n")
    b = tmp_path / "b.toml"
    b.write_text("[recipe]\nname = \"tight\"\nfail_conf = 0.4\n")
    assert load_recipe(a) == load_recipe(b)
    assert load_recipe(a).fail_conf == 0.4


def test_empty_line_file_settings_mean_none_not_the_current_folder(tmp_path):
    """The README's examples write ca_file = "" : that is no file, never Path('.')."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[line.mqtt]\nurl = "mqtt://127.0.0.1:1883"\nca_file = ""\ncert_file = ""\nkey_file = " "\n'
                   '[line.opcua]\nuser = "plc"\npassword = "pw"\ncert_file = ""\nkey_file = ""\n')
    c = load_config(cfg)
    assert (c.line.mqtt.ca_file, c.line.mqtt.cert_file, c.line.mqtt.key_file) == (None, None, None)
    assert (c.line.opcua.cert_file, c.line.opcua.key_file) == (None, None)
