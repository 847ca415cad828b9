"""Champion and challenger on a station: the models it knows, which one is active, promotion and rollback, and the
watcher that swaps a running station's model when a promotion lands (from the window or the command line).

The active model of a station is its latest sealed promotion in the database (``PromotionRepo``); before any, it is
the configuration's model. Both fronts call these functions; the repository checks the actor's role and the
model's trust and audits the change in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from inspector.core.auth import Actor
from inspector.core.config import ModelConfig, StorageConfig
from inspector.core.errors import ConfigError, ModelError
from inspector.detection.card import ModelCard, cards_in, load_card
from inspector.detection.detector import pick_model
from inspector.detection.registry import PACKAGE_MODELS, sha256_file

log = logging.getLogger(__name__)

POLL_S = 2.0  # how often a running station looks for a new promotion


@dataclass(frozen=True)
class KnownModel:
    """A model file this station may load, with its card and its history here."""

    sha256: str
    path: Path | None  # None: trusted by hash, but where the file is was not recorded
    name: str
    trusted_by: str  # "shipped card NAME" or the user who trusted it
    card: ModelCard | None = field(hash=False, compare=False)  # None: no readable card beside the file
    promoted: tuple[str, ...] = ()  # "promote by qc-anna 2026-11-29 21:40 UTC: reason", newest first
    active: bool = False
    exists: bool = True


def config_model_file(cfg: ModelConfig) -> Path:
    """The file the configuration's model means (what runs before any promotion)."""
    return pick_model(cfg)[0]


PRODUCT = "product:"  # a promotion for every station that runs a product is recorded for "product:<name>"


def product_target(product: str) -> str:
    """The promotions' target that means "every station running ``product``" (issue 30)."""
    return f"{PRODUCT}{product}"


def active_promotion(sessions, station: str, product: str = ""):
    """The station's active promotion (a ``PromotionDTO``), or None: the configuration's model is active. A station
    running ``product`` also takes a promotion made for the product (every line that makes it): the newer wins."""
    from db import PromotionRepo
    from db.writes import write

    def read(s):
        found = [PromotionRepo.active(s, station)] + ([PromotionRepo.active(s, product_target(product))]
                                                       if product else [])
        found = [p for p in found if p is not None]
        return max(found, key=lambda p: p.id) if found else None

    return write(sessions, read, "Reading the station's active model")


def shared_models_root(storage: StorageConfig) -> Path | None:
    """The folder the plant shares for promoted model files (issue 30): ``[storage] model_root``, else
    ``<image_root>/models``, else None (a promoted file must be at the same path on every station)."""
    if storage.model_root is not None:
        return Path(storage.model_root)
    return Path(storage.image_root) / "models" if storage.image_root is not None else None


def _companions(model: Path) -> list[Path]:
    """What travels with a model file: the ONNX twin a .pt runs as, and the card beside it."""
    loaded = pick_model(ModelConfig(path=model))[0]
    found = [loaded] if loaded != model else []
    return found + [model.parent / n for n in ("card.json", "card.md") if (model.parent / n).is_file()]


def _copy_in(files: list[Path], folder: Path) -> None:
    """Copy ``files`` into ``folder`` (made), each through a temporary name, so no half file is ever seen."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        tmp = folder / f".{f.name}.part"
        shutil.copyfile(f, tmp)
        tmp.replace(folder / f.name)


def publish_model(model: Path, sha: str, root: Path) -> Path:
    """Put a model about to be promoted on the plant's shared root, under its SHA-256 (``<root>/<sha>/<name>``),
    with its ONNX twin and card; returns the shared file. One sentence when the share cannot be written."""
    target = Path(root) / sha / model.name
    try:
        if not (target.is_file() and sha256_file(target) == sha):
            _copy_in([model, *_companions(model)], target.parent)
    except OSError as e:
        raise ConfigError(f"the model could not be put on the plant's shared models folder {root} ({e.strerror or e})"
                          ": mount the share (or fix [storage] model_root) and promote again; nothing was "
                          "promoted.") from e
    if sha256_file(target) != sha:
        raise ConfigError(f"the copy of {model.name} on the shared models folder {root} does not read back with its "
                          "hash: check the share; nothing was promoted.")
    return target


def _fetched(promo, share: Path, home: Path | None = None) -> Path:
    """The promoted file copied from the plant's shared root into the data folder ``home`` (default: this one),
    checked against the hash the promotion recorded before it is used (the path on the promoting PC is never
    trusted)."""
    from inspector.core.home import data_home

    name = Path(promo.name or promo.path).name
    local = (home or data_home()) / "models" / "plant" / promo.sha256 / name
    if local.is_file() and sha256_file(local) == promo.sha256:
        return local
    src = Path(share) / promo.sha256 / name
    if not src.is_file():
        raise ModelError(f"the model {promo.name} promoted for {promo.station} by {promo.actor} is neither here "
                         f"({promo.path}) nor on the plant's shared models folder ({src}): check that the share is "
                         "mounted.")
    _copy_in([src] + [f for f in src.parent.iterdir() if f.is_file() and f != src and not f.name.startswith(".")],
             local.parent)
    if sha256_file(local) != promo.sha256:
        local.unlink()
        raise ModelError(f"the copy of {promo.name} on the plant's shared models folder ({src}) is not the model "
                         f"promoted for {promo.station} (its sha256 differs from {promo.sha256[:12]}...): it was "
                         "replaced or damaged on the share.")
    log.info("model %s (%s) copied from the plant's shared models folder %s", name, promo.sha256[:12], share)
    return local


def checked_file(promo, share: Path | None = None, home: Path | None = None) -> Path:
    """The promoted file, its content checked against the hash the promotion recorded (never trust the path): the
    recorded path when the file there is the one promoted, else (with the plant's shared models folder ``share``)
    a copy taken from the share into the data folder ``home`` (default: this one) and checked before it is used."""
    path = Path(promo.path)
    if path.is_file() and sha256_file(path) == promo.sha256:
        return path
    if share is not None:
        return _fetched(promo, share, home)
    if not path.is_file():
        raise ModelError(f"the model promoted on {promo.station} ({path}, by {promo.actor}) is missing here: restore "
                         "the file, or roll back to another model with 'inspector model rollback --user NAME "
                         "--reason ...'.")
    raise ModelError(f"the file {path} is not the model promoted on {promo.station} (its sha256 differs from "
                     f"{promo.sha256[:12]}...): the file was replaced after the promotion; restore it.")


def station_model_config(sessions, station: str, cfg: ModelConfig, product: str = "", share: Path | None = None,
                         home: Path | None = None) -> tuple[ModelConfig, object | None]:
    """The model configuration a station starts with: the promoted model's file when there is one (taken from the
    plant's shared models folder ``share`` when it is not here)."""
    promo = active_promotion(sessions, station, product)
    if promo is None:
        return cfg, None
    return cfg.model_copy(update={"path": checked_file(promo, share, home)}), promo


def _when(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def known_models(sessions, station: str, config_model: Path) -> list[KnownModel]:
    """The shipped models and those trusted in the station's database, each with its card, the active one marked."""
    from db import PromotionRepo, TrustRepo, trusted_model_files
    from db.writes import write

    def read(s):
        return (TrustRepo.trusted(s, "model"), trusted_model_files(s), PromotionRepo.history(s, station, 1000))

    trusted, files, history = write(sessions, read, "Reading the station's models")
    active_sha = history[0].sha256 if history else _sha_or_empty(config_model)
    promoted: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for p in history:
        promoted.setdefault(p.sha256, []).append(f"{p.action} by {p.actor} {_when(p.created_at)}: {p.reason}")
        paths.setdefault(p.sha256, p.path)
    out: dict[str, KnownModel] = {}
    for folder, card in cards_in(PACKAGE_MODELS):  # each card beside the files it names
        if not card.auto_trust:
            continue
        for f in card.files:
            path = folder / f.name
            out[f.sha256] = KnownModel(f.sha256, path, f"{folder.name}/{f.name}", f"shipped card {folder.name}", card,
                                       tuple(promoted.get(f.sha256, ())), f.sha256 == active_sha, path.is_file())
    for sha, why in trusted.items():
        if sha in out:
            continue
        info = files.get(sha, {})
        file = info.get("file") or paths.get(sha, "")
        path = Path(file) if file else None
        card = load_card(path) if path is not None else None
        by = info.get("by") or why
        when = f" on {_when(info['at'])}" if info.get("at") else ""
        name = f"{path.parent.name}/{path.name}" if path is not None else why
        out[sha] = KnownModel(sha, path, name, f"{by}{when}", card, tuple(promoted.get(sha, ())), sha == active_sha,
                              path is not None and path.is_file())
    return sorted(out.values(), key=lambda m: (not m.active, m.name))


def _sha_or_empty(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError:
        return ""


def change_model(sessions, actor: Actor | None, station: str, model: Path, reason: str, config_model: Path,
                 action: str = "promote", force: bool = False, share: Path | None = None):
    """Promote (or roll back to) the model file ``model`` on ``station``; returns the ``PromotionDTO``.

    ``share``: the plant's shared models folder (``shared_models_root``); the file (with its ONNX twin and card)
    is put there under its SHA-256 first, where the other stations copy it from.

    A promotion needs a recorded comparison of ``model`` against the active model (``inspector compare`` or the
    Models tab), which the audit entry keeps; without one it is refused unless an admin forces it (``force``,
    with the reason recorded). PermissionDenied for an actor who may not or an untrusted model; ConfigError for
    a missing file or reason, or a promotion without a comparison.
    """
    from db import PromotionRepo, authorize
    from db.writes import write
    from inspector.core.errors import PermissionDenied
    from station.records import trusted_models

    model = Path(model)
    if not model.is_file():
        raise ConfigError(f"model file not found: {model}")
    sha = sha256_file(model)
    trusted = trusted_models(sessions).trusted()
    loaded = pick_model(ModelConfig(path=model))[0]  # a .pt runs as the .onnx beside it where one can run
    if loaded != model and sha in trusted and sha256_file(loaded) not in trusted:
        raise PermissionDenied(f"the station would run {loaded.name} beside {model.name}, and that file is not "
                               "trusted: trust it too ('inspector model add FILE --user ADMIN') or promote it.")
    current = _sha_or_empty(config_model)
    name = f"{model.parent.name}/{model.name}"
    if share is not None and sha in trusted:  # (an untrusted file is refused below, and is not published)
        publish_model(model, sha, share)

    def record(s):
        evidence: dict | None = None
        if action == "promote":
            promo = PromotionRepo.active(s, station)
            champion = promo.sha256 if promo is not None else current
            evidence = PromotionRepo.last_compare(s, champion, sha) if champion != sha else None
            if evidence is None and champion != sha:  # (the active model itself: refused below as such)
                if not force:
                    raise ConfigError(
                        f"no comparison of {name} against the active model is on record: run 'inspector compare "
                        f"--champion ACTIVE --challenger {model} --data HELD-OUT-SET' (or Compare in the Models "
                        "tab) first, or let an admin force it (--force) with the reason.")
                who = authorize(s, actor, "users")  # forcing is an admin's decision, checked in the users table
                evidence = {"forced_by": who.name, "compare": "none on record"}
        return PromotionRepo.record(s, actor, station, action, sha, str(model.resolve()), name, reason, trusted,
                                    current, evidence)
    return write(sessions, record, f"Recording the {action} of {name}")


def record_compare(sessions, result: dict, actor: str = "") -> dict:
    """Keep a comparison's figures (``inspector.lifecycle.compare`` result) where a promotion finds them."""
    from db import PromotionRepo
    from db.writes import write

    c, d = result["champion"], result["challenger"]
    figures = {"champion_sha256": sha256_file(Path(c["model"])), "challenger_sha256": sha256_file(Path(d["model"])),
               "champion": Path(c["model"]).name, "challenger": Path(d["model"]).name,
               "data": str(result.get("data", "")), "split": result.get("split", ""), "images": result.get("images"),
               "disagreements": result.get("disagreements", {}).get("count")}
    for key in ("map50", "part_recall", "false_reject_rate", "escapes"):
        figures[key] = [c.get(key), d.get(key)]
    if result.get("agreement"):  # parts mode: an anomaly model on either side
        figures["agreement"] = result["agreement"].get("rate")
        figures["image_auroc"] = [c.get("image_auroc"), d.get("image_auroc")]
    write(sessions, lambda s: PromotionRepo.record_compare(s, actor or "(not signed in)", figures),
          "Recording the comparison")
    return figures


def compare_text(figures: dict | None) -> str:
    """One line for a person about to promote: the last comparison against the active model."""
    if not figures:
        return "no comparison against the active model is on record"
    if "forced_by" in figures:
        return f"no comparison on record: forced by {figures['forced_by']}"

    def pair(key: str, fmt: str) -> str:
        a, b = figures.get(key) or (None, None)
        return f"{key} {fmt.format(a) if a is not None else '?'} -> {fmt.format(b) if b is not None else '?'}"
    return (f"last compare ({figures.get('at', '')} by {figures.get('by', '?')}) on {figures.get('images')} parts of "
            f"{figures.get('data')}: " + ", ".join([pair("map50", "{:.3f}"), pair("part_recall", "{:.3f}"),
                                                    pair("false_reject_rate", "{:.3f}"), pair("escapes", "{}")])
            + f", {figures.get('disagreements')} disagreement(s)")


def last_compare(sessions, station: str, model: Path, config_model: Path) -> dict | None:
    """The last recorded comparison of ``model`` against the station's active model, or None."""
    from db import PromotionRepo
    from db.writes import write

    def read(s):
        promo = PromotionRepo.active(s, station)
        champion = promo.sha256 if promo is not None else _sha_or_empty(config_model)
        return PromotionRepo.last_compare(s, champion, sha256_file(Path(model)))
    return write(sessions, read, "Reading the last comparison")


def rollback_target(sessions, station: str, config_model: Path, to: Path | None = None) -> Path:
    """The file a rollback goes back to: ``to``, or the model that was active before the active one came.

    The station's models form a stack: a promotion puts a model on it, a rollback takes models off down to the
    one it goes back to. So a second rollback goes further back (to the model before that one), never forward
    to the model just rolled away from.
    """
    if to is not None:
        return Path(to)
    from db import PromotionRepo
    from db.writes import write

    history = write(sessions, lambda s: PromotionRepo.history(s, station, 10_000), "Reading the promotions")
    if not history:
        raise ConfigError(f"nothing to roll back on {station}: no model was promoted; the configuration's model "
                          f"({config_model}) is active.")
    base = history[-1].previous_sha256 or _sha_or_empty(config_model)
    stack = [base]
    paths = {base: str(config_model)} if base == _sha_or_empty(config_model) else {}
    for p in reversed(history):  # oldest first
        paths.setdefault(p.sha256, p.path)
        if p.action == "rollback" and p.sha256 in stack:
            del stack[stack.index(p.sha256) + 1:]
        else:
            stack.append(p.sha256)
    if len(stack) < 2:
        raise ConfigError(f"nothing earlier to roll back to on {station}: {history[0].name} is the first model of "
                          "its history here; name another with --to MODEL.")
    target = stack[-2]
    if target not in paths:
        raise ConfigError(f"the model active before {history[0].name} is no longer known here: name it with --to "
                          "MODEL.")
    return Path(paths[target])


class PromotionWatcher:
    """Polls the station's active promotion on its own thread; ``on_change(promotion)`` when it changes."""

    def __init__(self, sessions, station: str, current_sha: str | None, on_change: Callable[[object], None],
                 poll_s: float = POLL_S, product: Callable[[], str] = lambda: "",
                 on_refused: Callable[[object, Exception], None] | None = None) -> None:
        self.sessions, self.station, self.on_change, self.poll_s = sessions, station, on_change, poll_s
        self.product, self.on_refused = product, on_refused  # the product the station runs now (issue 30)
        self.current = current_sha  # the sha of the promotion applied (None: the configuration's model)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inspector-promotions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.poll_s):
            try:
                promo = active_promotion(self.sessions, self.station, self.product())
            except Exception as e:  # noqa: BLE001 - a database hiccup must not stop the line; tried again later
                if not failing:  # once per outage, not every poll
                    log.warning("could not read the active model of %s (tried again every %.0f s): %s",
                                self.station, self.poll_s, e)
                failing = True
                continue
            failing = False
            sha = promo.sha256 if promo is not None else None
            if promo is None or sha == self.current:
                continue
            self.current = sha
            try:
                self.on_change(promo)
            except Exception as e:  # noqa: BLE001 - the old model keeps judging; the reason is logged
                log.error("the model promoted on %s (%s) could not be put on the line: %s; the previous model "
                          "keeps judging", self.station, promo.path, e)
                if self.on_refused is not None:
                    self.on_refused(promo, e)
