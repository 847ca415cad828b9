"""GenICam cameras through a vendor's GenTL producer and harvesters (``[camera] type = "genicam"``): the only
module that imports harvesters and genicam.

A GenTL producer is the vendor's transport layer as a ``.cti`` file (Basler, FLIR/Teledyne Spinnaker, Allied
Vision Vimba, Hikrobot MVS, IDS peak, Matrix Vision mvGenTL each ship one); ``[camera] cti`` names them, else
those on ``GENICAM_GENTL64_PATH`` are loaded. The genicam wheel ships a simulated producer (``viky.cti``) that
the tests use.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

from inspector.core.config import CameraConfig, FeatureValue
from inspector.core.errors import CameraError
from inspector.sources.camera import CameraInfo, Grab, apply

log = logging.getLogger(__name__)

try:
    with warnings.catch_warnings():  # SWIG's 'no __module__ attribute' on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from genicam.gentl import GenericException as GenTLError
        from harvesters.core import Harvester
except ImportError as e:  # the cameras extra is optional
    Harvester = GenTLError = None  # type: ignore[assignment,misc]
    _MISSING = str(e)
else:
    _MISSING = ""

ACCESS = {0: "access unknown", 1: "", 2: "read only", 3: "no access", 4: "busy", 5: "open", 6: "open read only"}
CHANNELS = {"RGBa8": 4, "RGBA8": 4, "BGRa8": 4, "BGRA8": 4, "RGB8": 3, "BGR8": 3, "RGB8Packed": 3, "BGR8Packed": 3,
            "RGB10": 3, "RGB12": 3, "RGB16": 3, "BGR10": 3, "BGR12": 3, "BGR16": 3}


def available() -> str:
    """"" when harvesters and genicam can be used, else why not (one sentence)."""
    return f"harvesters and genicam are not installed ({_MISSING}): pip install \"inspector[cameras]\"." \
        if _MISSING else ""


def simulated_producer() -> Path | None:
    """The genicam wheel's simulated GenTL producer (``viky.cti``), when installed."""
    if _MISSING:
        return None
    import genicam

    found = sorted(Path(genicam.__file__).parent.rglob("*.cti"))
    return found[0] if found else None


def producers(cti: tuple[Path, ...] | list[Path] = ()) -> list[Path]:
    """The GenTL producers to load: those given, else every ``.cti`` in the folders of GENICAM_GENTL64_PATH."""
    if cti:
        missing = [str(p) for p in cti if not Path(p).is_file()]
        if missing:
            raise CameraError(f"GenTL producer not found: {', '.join(missing)} (check [camera] cti).")
        return [Path(p) for p in cti]
    found: list[Path] = []
    for folder in os.environ.get("GENICAM_GENTL64_PATH", "").split(os.pathsep):
        if folder and Path(folder).is_dir():
            found += sorted(Path(folder).glob("*.cti"))
    return found


def _harvester(cti) -> Harvester:
    if _MISSING:
        raise CameraError(f"[camera] type = \"genicam\" needs {available()}")
    files = producers(cti)
    if not files:
        raise CameraError("no GenTL producer: name the camera vendor's .cti file in [camera] cti (or set "
                          "GENICAM_GENTL64_PATH).")
    h = Harvester()
    try:
        for f in files:
            h.add_file(str(f), check_existence=True)
        h.update()
    except Exception as e:  # noqa: BLE001 - a producer that will not load is the user's to fix
        h.reset()
        raise CameraError(f"the GenTL producer could not be loaded ({', '.join(map(str, files))}): {e}.") from e
    return h


def _info(d, attr: str) -> str:
    try:
        return str(getattr(d, attr))
    except Exception:  # noqa: BLE001 - producers leave out what they do not know (user id, often)
        return ""


def _maybe(get: Callable[[], int]) -> int | None:
    """A buffer's frame id or timestamp, None where the producer has none (viky has no timestamps)."""
    try:
        return get()
    except Exception:  # noqa: BLE001 - NotAvailableException and its kin
        return None


def list_cameras(cti: tuple[Path, ...] | list[Path] = ()) -> list[CameraInfo]:
    """Every camera the GenTL producers find."""
    h = _harvester(cti)
    try:
        out = []
        for d in h.device_info_list:
            status = int(_info(d, "access_status") or 0)
            out.append(CameraInfo("genicam", _info(d, "vendor"), _info(d, "model"), _info(d, "serial_number"),
                                  _info(d, "user_defined_name"), _info(d, "tl_type"), status == 1,
                                  ACCESS.get(status, f"access status {status}")))
        return out
    finally:
        h.reset()


def opener(cfg: CameraConfig) -> Callable[[], HarvestersDevice]:
    if _MISSING:
        raise CameraError(f"[camera] type = \"genicam\" needs {available()}")
    return lambda: HarvestersDevice(cfg)


class HarvestersDevice:
    """One GenICam camera through its GenTL producer, opened, set as ``[camera]`` says and acquiring."""

    def __init__(self, cfg: CameraConfig) -> None:
        self._cfg = cfg
        self._h = _harvester(cfg.cti)
        try:
            found = [i for i, d in enumerate(self._h.device_info_list)
                     if cfg.id in ("", _info(d, "serial_number"), _info(d, "user_defined_name"), _info(d, "id_"))]
            if not found:
                which = f"with serial number or user id {cfg.id!r}" if cfg.id else "at all"
                raise CameraError(f"the GenTL producer finds no camera {which}: check the cable and power, and "
                                  f"'inspector cameras'.")
            d = self._h.device_info_list[found[0]]
            self.name = f"{_info(d, 'model')} ({_info(d, 'serial_number')})"
            try:
                self._ia = self._h.create(found[0])
            except Exception as e:  # noqa: BLE001 - in use, unreachable: the producer says which
                raise CameraError(f"cannot open camera {self.name}: {e}.") from e
            self._nodes = self._ia.remote_device.node_map
            try:
                apply(cfg, self._set, self._has)
                self._ia.start()
            except BaseException:
                self._ia.destroy()
                raise
        except BaseException:
            self._h.reset()
            raise
        log.info("camera %s open: %s, trigger %s", self.name, self._nodes.PixelFormat.value, cfg.trigger.value)

    def _has(self, name: str) -> bool:
        try:
            getattr(self._nodes, name)
            return True
        except AttributeError:
            return False

    def _set(self, name: str, value: FeatureValue) -> None:
        node = getattr(self._nodes, name)
        try:
            if node.value == value:
                return  # already so (a changeover sets what differs; some nodes are locked while acquiring)
        except Exception:  # noqa: BLE001 - a node that cannot be read is set all the same
            pass
        node.value = value

    def configure(self, items: list[tuple[str, FeatureValue]]) -> None:
        apply(self._cfg, self._set, self._has, items)

    def fire(self) -> None:
        try:
            self._nodes.TriggerSoftware.execute()
        except Exception as e:  # noqa: BLE001 - a camera gone or without the node: either way no frame comes
            raise CameraError(f"camera {self.name} did not take the software trigger: {e}") from e

    def grab(self, timeout_s: float) -> Grab | None:
        try:
            buf = self._ia.try_fetch(timeout=max(timeout_s, 0.001))
        except GenTLError as e:
            raise CameraError(f"camera {self.name} stopped answering: {e}") from e
        if buf is None:
            return None
        with buf:
            fid, stamp = _maybe(lambda: int(buf.frame_id)), _maybe(lambda: int(buf.timestamp_ns))
            raw = buf.module
            if hasattr(raw, "is_complete") and not raw.is_complete():
                return Grab(None, "", fid, stamp, "incomplete buffer from the camera")
            if not buf.payload.components:
                return Grab(None, "", fid, stamp, "the camera sent a buffer without an image")
            c = buf.payload.components[0]
            fmt = str(c.data_format)
            n = CHANNELS.get(fmt, 1)
            try:
                pixels = c.data.reshape(c.height, c.width, n) if n > 1 else c.data.reshape(c.height, c.width)
            except ValueError:
                return Grab(None, fmt, fid, stamp, f"corrupt buffer: {c.data.size} values for a {c.width}x{c.height} "
                                                   f"{fmt} picture")
            return Grab(pixels.copy(), fmt, fid, stamp)

    def close(self) -> None:
        try:
            self._ia.stop()
            self._ia.destroy()
        finally:
            self._h.reset()
