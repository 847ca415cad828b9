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


# ---- the writer: load, save, load gives the same configuration (tomli-w quotes what TOML needs) ----------------

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_names = st.text(min_size=1, max_size=16)  # class names: any text the loader takes (spaces, dots, quotes, ...)
_products = st.from_regex(r"[A-Za-z0-9_.-]{1,24}", fullmatch=True)  # the product names the loader takes
_rules = st.fixed_dictionaries({}, optional={"fail_conf": st.floats(0.5, 1), "review_conf": st.floats(0, 0.25),
                                             "min_area_px": st.floats(0, 1e9)})
_recipes = st.fixed_dictionaries({"name": _names, "classes": st.dictionaries(_names, _rules, max_size=3)},
                                 optional={"roi": st.just([0.1, 0.2, 0.9, 0.8]), "min_area_px": st.floats(0, 1e6)})
_configs = st.fixed_dictionaries(
    {"recipe": _recipes,
     "products": st.dictionaries(_products, st.fixed_dictionaries(
         {"recipe": _recipes, "classes": st.lists(_names, max_size=3)}, optional={"model": st.just("m/x.onnx")}),
         max_size=3)},
    optional={"station": st.fixed_dictionaries({"name": _names}),
              "shifts": st.dictionaries(st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
                                        st.sampled_from(["06:00-14:00", "22:00-06:00"]), max_size=2)})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_configs)
@example(data={"recipe": {"name": "r", "classes": {"class with space": {"fail_conf": 0.9}}},
          "products": {"flange.80": {"recipe": {"name": "flange 80", "classes": {"a.b": {}}}, "classes": ["a.b"]}}})
def test_load_save_load_gives_the_same_config(data, tmp_path_factory) -> None:
    from inspector.core.config import config_from_dict

    try:
        cfg = config_from_dict(data)
    except ConfigError:
        return  # not a configuration the loader accepts (the fuzz tests cover what it says)
    path = tmp_path_factory.mktemp("cfg") / "inspector.toml"
    save_config(cfg, path)
    again = load_config(path)
    assert again == cfg
    save_config(again, path)
    assert load_config(path) == cfg


def test_a_dotted_product_and_a_spaced_class_round_trip(tmp_path) -> None:
    """The hand-written writer refused to save [products."flange.80"] ("unknown key") and a class name with a
    space gave a raw TOMLDecodeError."""
    p = tmp_path / "c.toml"
    p.write_text('[products."flange.80"]\nclasses = ["hair line"]\n[products."flange.80".recipe.classes."hair line"]\n'
                 'fail_conf = 0.7\n')
    cfg = load_config(p)
    save_config(cfg, tmp_path / "saved.toml")
    again = load_config(tmp_path / "saved.toml")
    assert again == cfg and again.products["flange.80"].recipe.classes["hair line"].fail_conf == 0.7
