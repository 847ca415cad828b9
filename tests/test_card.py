"""The model card: one typed, frozen value read and written by ``inspector.detection.card`` alone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from inspector.detection.card import CARD_FILE, ModelCard, cards_in, load_card, read_card_file, write_card

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in MODELS.glob(f"*/{CARD_FILE}")))
def test_a_shipped_card_reads_typed_and_writes_back_unchanged(folder: str, tmp_path: Path) -> None:
    raw = json.loads((MODELS / folder / CARD_FILE).read_text())
    card = read_card_file(MODELS / folder / CARD_FILE)
    assert card is not None and card.name == raw["name"] and card.classes == tuple(raw["classes"])
    assert {f.name: f.sha256 for f in card.files} == {n: f["sha256"] for n, f in raw["files"].items()}
    assert card.to_dict() == raw  # nothing lost, not even the keys this version does not type
    write_card(tmp_path, card)
    assert json.loads((tmp_path / CARD_FILE).read_text()) == raw
    assert load_card(tmp_path / "any.pt") == card


def test_the_typed_fields_the_engine_reads() -> None:
    base = load_card(MODELS / "surfaces-v1" / "surfaces-v1.pt")
    parts = load_card(MODELS / "parts-v2" / "parts-v2.pt")
    assert base is not None and base.is_base and base.auto_trust and base.imgsz == 320
    assert parts is not None and not parts.is_base and parts.variant_file("int8") == "int8/parts-v2_int8.xml"
    assert parts.variant_file("fp16") is None and parts.sha256_of("nope.pt") is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        parts.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("bad, says", [
    ({"name": "m", "task": "segment"}, "card task"),
    ({"name": "m", "imgsz": 4}, "imgsz between 16 and 8192"),
    ({"name": "m", "imgsz": "320"}, "whole number for the card's imgsz"),
    ({"name": "m", "classes": "scratch"}, "classes as a list"),
    ({"name": "m", "files": {"m.pt": {"bytes": 3}}}, "with a name and a SHA-256"),
    ({"name": "m", "files": ["m.pt"]}, "files as an object"),
    ({"name": "m", "variants": {"int8": "x.xml"}}, "variants as an object of objects"),
    ({"name": "m", "train_val_map50": "high"}, "number for the card's train_val_map50"),
])
def test_a_card_that_is_not_one_is_refused_in_one_sentence(bad: dict, says: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=says):
        ModelCard.from_dict(bad)
    (tmp_path / CARD_FILE).write_text(json.dumps(bad))
    assert load_card(tmp_path / "m.pt") is None  # the engine treats it as no card (and logs why)


@pytest.mark.parametrize("file", ["../outside.xml", "/abs/model.xml", ""])
def test_a_variant_may_not_leave_the_cards_folder(file: str) -> None:
    card = ModelCard.from_dict({"name": "m", "variants": {"int8": {"file": file}}})
    assert card.variant_file("int8") is None


def test_an_exports_card_trusts_nothing_by_itself_and_cards_in_lists_readable_cards(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    write_card(tmp_path / "a", {"name": "a", "auto_trust": False, "files": {"a.onnx": {"sha256": "ab", "bytes": 1}}})
    write_card(tmp_path / "b", ModelCard(name="b"))
    (tmp_path / "c" / CARD_FILE).write_text("{not json")
    found = cards_in(tmp_path)
    assert [(p.name, c.name) for p, c in found] == [("a", "a"), ("b", "b")]
    assert not found[0][1].auto_trust and json.loads((tmp_path / "a" / CARD_FILE).read_text())["auto_trust"] is False
    assert "auto_trust" not in json.loads((tmp_path / "b" / CARD_FILE).read_text())
    with pytest.raises(ValueError, match="expected card fields"):
        found[1][1].with_changes(colour="red")
