"""A federated model's card in words: its rounds, the stations and the parts each contributed, and each
station's validation of the global model round by round (what the Models tab shows). Reads the card only."""

from __future__ import annotations

from collections.abc import Sequence

from inspector.detection.card import ModelCard


def contributions(card: ModelCard) -> Sequence[tuple[str, int, int]]:
    """(station, parts, rounds) from a federated model's card; empty for any other card."""
    fed = card.extra.get("federated") or {}
    return tuple((str(n), int(s.get("parts", 0)), int(s.get("rounds", 0)))
                 for n, s in sorted((fed.get("stations") or {}).items()))


def federation_lines(card: ModelCard) -> list[str]:
    """Lines about the federation that made the model; none for a model trained on one station."""
    fed = card.extra.get("federated")
    if not isinstance(fed, dict):
        return []
    who = ", ".join(f"{n} ({parts} parts, {rounds} rounds)" for n, parts, rounds in contributions(card))
    lines = [f"Federated: {fed.get('rounds', '?')} rounds of {fed.get('round_budget_s', '?')} s, "
             f"{fed.get('strategy', '')}; stations: {who or 'none recorded'}"]
    for r in fed.get("per_round") or ():
        stations = r.get("stations") or {}
        val = ", ".join(f"{n} {v['val_map50']:.3f}" for n, v in sorted(stations.items())
                        if isinstance(v.get("val_map50"), (int, float)))
        lines.append(f"Round {r.get('round')}: " + (f"val mAP50 of the global model on each station's own "
                                                    f"held-out parts: {val}" if val else "no station validated"))
    return lines
