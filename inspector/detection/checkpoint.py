"""The one gate every PyTorch checkpoint and architecture file passes before Ultralytics may read it.

A ``.pt`` is a pickle, and even an allow-list of layer classes is not enough: a pickle may *call* such a
class with arguments (``DetectionModel(cfg)`` with an ``activation`` string that Ultralytics evaluates).
So no class named in a file is ever called. ``read_checkpoint`` unpickles with every global replaced by an
inert record (only PyTorch's tensor rebuilders and plain containers are real) and keeps the tensors and
plain data; ``rebuild`` builds the network from Ultralytics' own bundled architecture (parsed here as data
and checked), loads the tensors into it (shapes must match exactly) and writes a fresh checkpoint of our
own objects into a private folder: that file, never the user's, is what Ultralytics loads. An architecture
``.yaml`` goes through ``architecture``: parsed as data, layer names and arguments checked.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.core.errors import ModelError
from inspector.detection.registry import ModelRegistry, sha256_file

log = logging.getLogger(__name__)


#: module prefixes of the classes a YOLO checkpoint may name; anything else (os.system, eval, ...) is refused
#: before reading. Even these are never called: they become inert records (see ``_Record``).
_SAFE_MODULES = ("torch.nn.modules.", "ultralytics.nn.modules.", "ultralytics.nn.tasks.")
_SAFE_NAMES = frozenset({
    "ultralytics.utils.IterableSimpleNamespace", "collections.OrderedDict", "builtins.set", "builtins.frozenset",
    "builtins.slice", "builtins.range", "builtins.complex", "builtins.bytearray", "types.SimpleNamespace",
    "argparse.Namespace", "pathlib.PosixPath", "pathlib.WindowsPath", "torch.optim.sgd.SGD",
    "torch.optim.adamw.AdamW", "torch.optim.adam.Adam", "numpy.dtype", "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar", "torch.Size", "torch.device",
})
#: the only callables a checkpoint may really call: PyTorch's tensor rebuilders and plain containers
_REAL = {
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
}
#: the layer names an architecture may use (those of Ultralytics' bundled YOLOv8/YOLO11 detectors)
_LAYERS = frozenset({"Conv", "C2f", "C3k2", "SPPF", "C2PSA", "nn.Upsample", "Concat", "Detect"})
_ARCH_KEYS = frozenset({"nc", "scales", "backbone", "head", "scale", "yaml_file", "ch", "kpt_shape"})
#: bundled detection architectures tried when rebuilding a checkpoint, smallest first
ARCHITECTURES = tuple(f"{family}{s}" for s in "nsmlx" for family in ("yolo11", "yolov8"))
_FAMILY_FILE = {"yolo11": "11/yolo11.yaml", "yolov8": "v8/yolov8.yaml"}


def _refusal(shown: Path) -> ModelError:
    return ModelError(f"refusing to load {shown}: it is not a registered model and it is not a plain PyTorch "
                      "checkpoint of a YOLO detector (it may hold code). A signed-in admin can trust a file they "
                      "know with 'inspector model add FILE --user NAME'.")


class _Record:
    """What any class or function named in a checkpoint becomes: it records its arguments and state, runs
    nothing. Subclassed per name, so ``_name`` says what the file asked for."""

    _name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs, self.state = args, kwargs, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<record of {self._name}>"


def _record_class(module: str, name: str) -> type:
    return type("Record", (_Record,), {"_name": f"{module}.{name}"})


class _RecordingUnpickler(pickle.Unpickler):
    """torch.load wraps this class (it adds tensor storages); every global but ``_REAL`` becomes a record."""

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins"}.get(module, module)  # protocol 2 names Python 2's module
        if (module, name) in _REAL:
            return super().find_class(module, name)
        return _record_class(module, name)


class _RecordingPickle:
    """A ``pickle_module`` for torch.load that records instead of calling."""

    Unpickler = _RecordingUnpickler
    load = staticmethod(lambda f, **kw: _RecordingUnpickler(f, **kw).load())
    __name__ = "inspector_recording_pickle"


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint holds once read as data: tensors and plain values, nothing callable."""

    tensors: dict[str, Any]  # state dict of the model (EMA when the file has one)
    names: dict[int, str]
    hint: str  # the architecture the file claims (a name only, never its definition)
    plain: dict[str, Any] = field(default_factory=dict)  # epoch, best_fitness, updates, train_args, optimizer


def _allowed_global(name: str) -> bool:
    """An exact safe name, or a layer class (never a function: ``ultralytics.nn.tasks`` has loaders). A first
    filter only: nothing named is ever called."""
    if name in _SAFE_NAMES:
        return True
    if not name.startswith(_SAFE_MODULES):
        return False
    import importlib

    import torch

    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type) and issubclass(obj, torch.nn.Module)


def _state_dict(module: Any, prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    """The parameters and persistent buffers of a recorded ``nn.Module`` tree, as ``load_state_dict`` names them."""
    import torch

    if depth > 64 or not isinstance(module, _Record) or not isinstance(module.state, dict):
        raise ValueError("not a module")
    st = module.state
    skip = st.get("_non_persistent_buffers_set") or set()
    for kind in ("_parameters", "_buffers"):
        for k, v in (st.get(kind) or {}).items():
            if v is None or (kind == "_buffers" and k in skip):
                continue
            if not isinstance(k, str) or not isinstance(v, torch.Tensor):
                raise ValueError(f"{prefix}{k} is not a tensor")
            out[prefix + k] = v.detach()
    for k, child in (st.get("_modules") or {}).items():
        if child is not None:
            _state_dict(child, f"{prefix}{k}.", out, depth + 1)


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` if it is plain data (numbers, strings, tensors, lists, dicts of them); ValueError otherwise."""
    import torch

    if depth > 16:
        raise ValueError("too deep")
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return {_plain(k, depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    raise ValueError(f"not plain data: {type(value).__name__}")


def read_checkpoint(path: Path, shown: Path | None = None) -> Checkpoint:
    """Read a YOLO checkpoint's tensors and plain values; no class or function named in it is called.

    ModelError (one sentence, naming ``shown`` or ``path``) for a file that is not a zip checkpoint, names
    globals outside the layer allow-list, or holds no detection model.
    """
    import torch

    shown = shown or path
    try:
        wanted = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as e:  # noqa: BLE001 - not a zip checkpoint (a bare pickle, junk): refused, never unpickled
        raise _refusal(shown) from e
    if not all(_allowed_global(g) for g in wanted):
        log.warning("%s names classes outside the allow-list: %s", path,
                    ", ".join(g for g in wanted if not _allowed_global(g))[:500])
        raise _refusal(shown)
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_RecordingPickle)
    except Exception as e:  # noqa: BLE001 - any failure of the recording loader is a refusal
        raise _refusal(shown) from e
    if not isinstance(ckpt, dict) or not any(isinstance(ckpt.get(k), _Record) for k in ("ema", "model")):
        raise ModelError(f"{shown} is a PyTorch file but not a YOLO checkpoint (no model in it).")
    model = ckpt["ema"] if isinstance(ckpt.get("ema"), _Record) else ckpt["model"]
    tensors: dict[str, Any] = {}
    try:
        _state_dict(model, "", tensors)
        names = model.state.get("names")
        names = dict(enumerate(names)) if isinstance(names, (list, tuple)) else names
        if not isinstance(names, dict) or not names or len(names) > 10000 or any(
                not isinstance(k, int) or not isinstance(v, str) or len(v) > 200 for k, v in names.items()) \
                or sorted(names) != list(range(len(names))):
            raise ValueError("class names are not a list of strings")
        plain = {k: _plain(ckpt[k]) for k in ("epoch", "best_fitness", "updates", "train_args", "optimizer")
                 if k in ckpt and not isinstance(ckpt[k], _Record)}
    except ValueError as e:
        raise ModelError(f"{shown} is a PyTorch file but not a YOLO detector checkpoint ({e}).") from e
    yaml = model.state.get("yaml") if isinstance(model.state.get("yaml"), dict) else {}
    hint = Path(str(yaml.get("yaml_file", ""))).stem
    return Checkpoint(tensors, names, hint, plain)


def bundled_architecture(name: str) -> dict:
    """The definition of one of Ultralytics' bundled detectors (``yolo11n``, ``yolov8s``, ...), checked."""
    import ultralytics

    m = re.fullmatch(r"(yolo11|yolov8)([nsmlx])", name)
    if not m:
        raise ModelError(f"unknown architecture {name!r}: Inspector builds {', '.join(ARCHITECTURES)}.")
    d = _parse_yaml(Path(ultralytics.__file__).parent / "cfg" / "models" / _FAMILY_FILE[m.group(1)], name)
    d["scale"] = m.group(2)
    return d


def _parse_yaml(path: Path, shown: str) -> dict:
    import yaml

    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ModelError(f"cannot read architecture {shown}: {e}") from e
    return check_architecture(d, shown)


def _literal(a: Any) -> bool:
    if isinstance(a, bool) or a is None or isinstance(a, (int, float)):
        return True
    if isinstance(a, str):
        return a in ("nc", "None", "nearest", "True", "False")
    if isinstance(a, list):
        return len(a) <= 8 and all(_literal(x) for x in a)
    return False


def check_architecture(d: Any, shown: str) -> dict:
    """An architecture definition as data: only known keys, layers from ``_LAYERS`` and literal arguments.

    Ultralytics evaluates an ``activation`` string and looks layer names up among its module's globals
    (functions included), so anything else is refused here, before Ultralytics sees the definition.
    """
    bad = ModelError(f"refusing architecture {shown}: only YOLOv8/YOLO11 detection layers with plain arguments "
                     "are built (no 'activation', no other layer names).")
    if not isinstance(d, dict) or set(d) - _ARCH_KEYS or not isinstance(d.get("backbone"), list) \
            or not isinstance(d.get("head"), list):
        raise bad
    scales = d.get("scales") or {}
    if not isinstance(scales, dict) or not all(isinstance(k, str) and len(k) == 1 and isinstance(v, list) and len(v)
                                               == 3 and all(_literal(x) for x in v) for k, v in scales.items()):
        raise bad
    if not isinstance(d.get("nc", 80), int) or isinstance(d.get("nc", 80), bool):
        raise bad
    for row in d["backbone"] + d["head"]:
        if not (isinstance(row, list) and len(row) == 4 and isinstance(row[2], str) and row[2] in _LAYERS
                and isinstance(row[1], int) and 0 < row[1] <= 16 and isinstance(row[3], list) and _literal(row[3])
                and (isinstance(row[0], int) or isinstance(row[0], list) and all(isinstance(x, int) for x in row[0]))):
            raise bad
    return {k: v for k, v in d.items() if k != "yaml_file"}


def architecture(ref: str | Path) -> dict:
    """A base given as an architecture: a bundled name (``yolo11n.yaml``) or a ``.yaml`` file, parsed as data
    and checked (``check_architecture``). A file on disk is read, never handed to Ultralytics."""
    p = Path(ref)
    if p.is_file():
        d = _parse_yaml(p, str(ref))
        m = re.search(r"(\d+)([nslmx])$", p.stem)
        if d.get("scales") and not d.get("scale"):
            d["scale"] = m.group(2) if m and m.group(2) in d["scales"] else next(iter(d["scales"]))
        return d
    return bundled_architecture(p.stem)


def _build(arch: dict, nc: int):
    from ultralytics.nn.tasks import DetectionModel

    d = {**arch, "nc": nc}
    return DetectionModel(cfg=d, nc=nc, verbose=False)


def _network_for(ck: Checkpoint, shown: Path):
    """The bundled architecture whose tensors match the checkpoint's exactly, with the tensors loaded."""
    shapes = {k: tuple(v.shape) for k, v in ck.tensors.items()}
    order = [ck.hint] if ck.hint in ARCHITECTURES else []
    order += [a for a in ARCHITECTURES if a != ck.hint]
    for name in order:
        model = _build(bundled_architecture(name), len(ck.names))
        own = model.state_dict()
        if {k: tuple(v.shape) for k, v in own.items()} == shapes:
            model.load_state_dict(ck.tensors, strict=True)
            model.names = dict(ck.names)
            return model, name
    raise ModelError(f"{shown}: its tensors fit none of the bundled detectors ({', '.join(ARCHITECTURES)}); "
                     "Inspector rebuilds only those.")


_ARGS_TEXT = {"optimizer": {"SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp", "auto"}}


def network(path: Path):
    """(network, architecture name): the bundled detector a checkpoint's tensors fit, built here with them loaded
    (the file read as data, nothing in it called)."""
    return _network_for(read_checkpoint(Path(path)), Path(path))


def _train_args(given: Any, forced: dict[str, Any]) -> dict[str, Any]:
    """Training arguments from a file, reduced to numbers and flags Ultralytics knows (no paths, no strings
    that name files or code), then ``forced`` on top."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    out: dict[str, Any] = {}
    for k, v in (given if isinstance(given, dict) else {}).items():
        if k not in DEFAULT_CFG_DICT or k in forced:
            continue
        default = DEFAULT_CFG_DICT[k]
        if isinstance(v, bool) and isinstance(default, bool):
            out[k] = v
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and not isinstance(default, (bool, str)):
            out[k] = v
        elif isinstance(v, str) and v in _ARGS_TEXT.get(k, ()):
            out[k] = v
    return {**out, **forced}


def architecture_file(ref: str | Path, dest_dir: Path, nc: int | None = None) -> Path:
    """The checked definition of an architecture (``architecture``) written into ``dest_dir`` for Ultralytics
    to build from (named ``yolo11<scale>.yaml`` so that it reads the scale); the user's file is never given."""
    import yaml

    d = architecture(ref)
    if nc:
        d["nc"] = nc
    scale = d.get("scale") if d.get("scales") else None
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / (f"yolo11{scale}.yaml" if scale else "base.yaml")
    dest.write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
    return dest


def safe_source(ref: str | Path, work: Path, **kw: Any) -> Path:
    """What Ultralytics may be given for ``ref``: a ``.pt`` rebuilt from its tensors (``rebuild``) or an
    architecture's checked definition (``architecture_file``), both in the private folder ``work``."""
    if Path(ref).suffix.lower() == ".pt":
        return rebuild(Path(ref), Path(work) / Path(ref).name, **kw)
    if Path(ref).suffix.lower() in (".yaml", ".yml"):
        return architecture_file(ref, Path(work), kw.get("nc"))
    raise ModelError(f"{ref}: a base must be a .pt checkpoint or an architecture .yaml.")


def rebuild(source: Path, dest: Path, *, shown: Path | None = None, training_state: bool = False,
            train_args: dict[str, Any] | None = None, half: bool = False, nc: int | None = None) -> Path:
    """Write to ``dest`` a checkpoint Ultralytics may load, made of our own objects only; return ``dest``.

    The tensors of ``source`` (``read_checkpoint``) go into the bundled architecture they fit exactly.
    ``training_state`` keeps the optimizer's tensors, epoch and EMA (for a resume); ``train_args`` replace
    the file's (only its numbers and flags are kept: no paths). ``dest`` belongs in a private folder.
    """
    import copy
    import datetime as dt

    import torch
    import ultralytics

    src = Path(source)
    shown = shown or src
    ck = read_checkpoint(src, shown)
    model, arch = _network_for(ck, shown)
    plain = ck.plain
    ckpt: dict[str, Any] = {
        "model": copy.deepcopy(model).half() if half else model,
        "train_args": _train_args(plain.get("train_args"), {"task": "detect", **(train_args or {})}),
        "date": dt.datetime.now().isoformat(), "version": ultralytics.__version__,
        "rebuilt": {"architecture": arch, "source_sha256": sha256_file(src)},
        "ema": None, "optimizer": None, "epoch": -1,
    }
    if training_state:
        ckpt.update({"ema": copy.deepcopy(model).half(), "updates": plain.get("updates"),
                     "optimizer": plain.get("optimizer"), "epoch": _int(plain.get("epoch"), -1),
                     "best_fitness": plain.get("best_fitness")})
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, dest)
    log.info("rebuilt %s as %s from its tensors into %s", shown, arch, dest)
    return dest


def _int(v: Any, default: int) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default


def resumable(path: Path) -> bool:
    """Whether a checkpoint, read as data, is a run stopped mid-way (optimizer state kept, an epoch >= 0)."""
    plain = read_checkpoint(path).plain
    return plain.get("optimizer") is not None and _int(plain.get("epoch"), -1) >= 0


def check_pickle(path: Path, shown: Path | None = None) -> None:
    """Read ``path`` as data (``read_checkpoint``) and check that its tensors fit a bundled detector.

    Nothing in the file is called. ModelError for a file that is no YOLO checkpoint or may hold code.
    """
    _network_for(read_checkpoint(Path(path), shown), shown or Path(path))


def vet(registry: ModelRegistry, path: Path) -> str:
    """A trusted hash, or a ``.pt`` that ``check_pickle`` reads as data; ModelError otherwise."""
    path = Path(path)
    h = sha256_file(path)
    if h in registry.trusted():
        return h
    if path.suffix.lower() == ".pt":
        check_pickle(path)
        log.info("%s is not registered but holds only tensors of a bundled detector", path)
        return h
    return registry.check(path)
