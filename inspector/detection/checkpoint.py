"""The gate every PyTorch checkpoint passes before Ultralytics may read it: a ``.pt`` is a pickle that can
run code, so one that is not trusted by hash is first read with PyTorch's weights-only loader and an
allow-list of layer classes. The only module of the engine's run path that imports torch for this.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from inspector.core.errors import ModelError
from inspector.detection.registry import ModelRegistry, sha256_file

log = logging.getLogger(__name__)


#: module prefixes of the classes a YOLO checkpoint may hold; anything else (os.system, eval, ...) is refused
_SAFE_MODULES = ("torch.nn.modules.", "ultralytics.nn.modules.", "ultralytics.nn.tasks.")
_SAFE_NAMES = frozenset({
    "ultralytics.utils.IterableSimpleNamespace", "collections.OrderedDict", "builtins.set", "builtins.frozenset",
    "builtins.slice", "builtins.range", "builtins.complex", "builtins.bytearray", "types.SimpleNamespace",
    "argparse.Namespace", "pathlib.PosixPath", "pathlib.WindowsPath", "torch.optim.sgd.SGD",
    "torch.optim.adamw.AdamW", "torch.optim.adam.Adam", "numpy.dtype", "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar", "torch.Size", "torch.device",
})


def _allowed_global(name: str) -> bool:
    """An exact safe name, or a layer class (never a function: ``ultralytics.nn.tasks`` has loaders)."""
    if name in _SAFE_NAMES:
        return True
    if not name.startswith(_SAFE_MODULES):
        return False
    import torch

    try:
        obj = _resolve(name)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type) and issubclass(obj, torch.nn.Module)


def _resolve(name: str) -> Any:
    import importlib

    module, _, attr = name.rpartition(".")
    obj: Any = importlib.import_module(module)
    return getattr(obj, attr)


def check_pickle(path: Path, shown: Path | None = None) -> None:
    """Unpickle ``path`` with PyTorch's weights-only loader, allowing only layer and checkpoint classes.

    Nothing in the file can run: a global outside the allow-list (a pickled ``os.system`` call, say)
    stops the loader before it is called. ModelError for such a file, or one that is no checkpoint
    (naming ``shown``, the user's file, when ``path`` is a private copy of it).
    """
    import torch

    refuse = ModelError(f"refusing to load {shown or path}: it is not a registered model and it is not a plain PyTorch "
                        "checkpoint (it may hold code). A signed-in admin can trust a file they know with "
                        "'inspector model add FILE --user NAME'.")
    try:
        wanted = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as e:  # noqa: BLE001 - not a zip checkpoint (a bare pickle, junk): refused, never unpickled
        raise refuse from e
    if not all(_allowed_global(g) for g in wanted):
        log.warning("%s names classes outside the allow-list: %s", path,
                    ", ".join(g for g in wanted if not _allowed_global(g))[:500])
        raise refuse
    try:
        allowed = [_resolve(g) for g in wanted]
        with torch.serialization.safe_globals(allowed):
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure of the safe loader is a refusal
        raise refuse from e
    if not isinstance(ckpt, dict) or not any(k in ckpt for k in ("model", "ema")):
        raise ModelError(f"{shown or path} is a PyTorch file but not a YOLO checkpoint (no 'model' in it).")


def vet(registry: ModelRegistry, path: Path) -> str:
    """A trusted hash, or a ``.pt`` that ``check_pickle`` reads safely; ModelError otherwise."""
    path = Path(path)
    h = sha256_file(path)
    if h in registry.trusted():
        return h
    if path.suffix.lower() == ".pt":
        check_pickle(path)
        log.info("%s is not registered but holds only allowed layer classes: loading it", path)
        return h
    return registry.check(path)
