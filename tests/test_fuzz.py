"""Bad input of every kind, generated: the process never crashes; the user gets one clear sentence."""

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inspector.core.config import Config, RecipeConfig, load_config, load_recipe, save_config
from inspector.core.errors import ConfigError, DatasetError, StorageError
from inspector.sources.images import decode_image
from inspector.training.datasets import load_dataset

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

toml_keys = st.sampled_from(["recipe", "model", "storage", "run", "camera", "quality", "recipe.classes.scratch"])
toml_fields = st.sampled_from(["fail_conf", "review_conf", "imgsz", "backend", "mode", "roi", "queue_size",
                               "save_images", "min_area_px", "db_url", "bogus", "jpeg_quality", "threads"])
toml_values = st.one_of(st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=False).map(repr),
                        st.text(max_size=12).map(lambda s: '"' + s.replace("\\", "").replace('"', "") + '"'),
                        st.just("[0.1, 0.2, 0.3]"), st.just("[1, 2]"), st.just("true"), st.just("nan"))


def one_sentence(e: Exception) -> None:
    msg = str(e)
    assert msg and "Traceback" not in msg and len(msg) < 2000


@FAST
@given(st.lists(st.tuples(toml_keys, toml_fields, toml_values), max_size=6))
def test_generated_config_files(entries):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.toml"
        p.write_text("".join(f"[{k}]\n{f} = {v}\n" for k, f, v in entries))
        for loader, kind in ((load_config, Config), (load_recipe, RecipeConfig)):
            try:
                got = loader(p)
            except ConfigError as e:
                one_sentence(e)
                continue
            assert type(got) is kind
            if kind is Config:  # what loaded saves, and reads back the same
                save_config(got, Path(d) / "again.toml")
                assert load_config(Path(d) / "again.toml") == got


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_config(data):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.toml"
        p.write_bytes(data)
        try:
            load_config(p)
        except ConfigError as e:
            one_sentence(e)


_JPEG = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))[1].tobytes()
_PNG = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))[1].tobytes()


@FAST
@given(st.one_of(st.binary(max_size=300), st.integers(0, len(_JPEG)).map(lambda n: _JPEG[:n]),
                 st.integers(0, len(_PNG)).map(lambda n: _PNG[:n]),
                 st.tuples(st.integers(0, len(_JPEG) - 1), st.binary(min_size=1, max_size=8)).map(
                     lambda t: _JPEG[:t[0]] + t[1] + _JPEG[t[0] + len(t[1]):])),
       st.sampled_from([".jpg", ".png", ".bmp", ".txt", ""]))
def test_image_files_truncated_corrupt_wrong_extension(data, suffix):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"x{suffix}"
        p.write_bytes(data)
        img, err = decode_image(p)
        assert (img is None) != (err is None)
        if img is not None:
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3


def test_huge_dimensions_refused(tmp_path):
    # a PNG header claiming 100000 x 100000 pixels
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b"")
    p = tmp_path / "huge.png"
    p.write_bytes(png)
    img, err = decode_image(p)
    assert img is None and err


label_lines = st.one_of(st.text(max_size=40), st.tuples(
    st.integers(-2, 9), *[st.one_of(st.floats(-2, 3), st.just(float("nan")))] * 4).map(lambda t: " ".join(map(str, t))))


@FAST
@given(st.lists(label_lines, max_size=5))
@example(["0 0.0 -0.0078125 0.015625 0.00390625"])  # within the edge tolerance, yet wholly above the image
def test_generated_label_files(lines):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "images").mkdir()
        (root / "labels").mkdir()
        cv2.imwrite(str(root / "images" / "a.png"), np.full((20, 30, 3), 100, np.uint8))
        (root / "labels" / "a.txt").write_text("\n".join(lines))
        (root / "classes.txt").write_text("a\nb\nc\n")
        try:
            ds = load_dataset(root)
            for im in ds.split("all"):
                for b in im.boxes:
                    assert 0 <= b.x1 <= b.x2 <= 30 and 0 <= b.y1 <= b.y2 <= 20
        except DatasetError as e:
            one_sentence(e)


def test_binary_data_yaml_is_a_clear_error(tmp_path):
    (tmp_path / "data.yaml").write_bytes(b"\x80\x81")
    with pytest.raises(DatasetError, match="not a text file"):
        load_dataset(tmp_path)


@FAST
@given(st.lists(st.tuples(st.sampled_from(["images", "labels", "annotations", "splits", "images/x", "classes.txt",
                                           "data.yaml", "annotations/a.xml", "splits/val.txt", "images/a.jpg"]),
                          st.binary(max_size=60)), max_size=6))
def test_generated_dataset_folders(entries):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, content in entries:
            p = root / name
            try:
                if "." in name:
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_bytes(content)
                else:
                    p.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass
        try:
            load_dataset(root)
        except DatasetError as e:
            one_sentence(e)


@FAST
@given(st.one_of(st.text(max_size=60), st.sampled_from([
    "sqlite:///", "sqlite:////proc/nope/x.db", "postgresql://u:secret@127.0.0.1:1/none", "oracle://x",
    "sqlite:///relative/../x.db?mode=ro", "://", "sqlite://", "postgresql://", "http://example"])))
def test_generated_database_urls(url):
    from db import open_database

    tmp = tempfile.mkdtemp()
    try:
        engine = open_database(url if "sqlite:///" not in url or url.startswith("sqlite:////proc")
                               else url.replace("sqlite:///", f"sqlite:///{tmp}/"))
        engine.dispose()
    except StorageError as e:
        one_sentence(e)
        assert "secret" not in str(e), "a password must never be shown"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
