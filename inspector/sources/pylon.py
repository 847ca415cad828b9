"""Basler cameras through pypylon (``[camera] type = "pylon"``): the only module that imports pypylon.

pylon's own camera emulator (``PYLON_CAMEMU=N``) is a camera like any other here: the tests and the bench use it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

from inspector.core.config import CameraConfig, FeatureValue
from inspector.core.errors import CameraError
from inspector.sources.camera import CameraInfo, Grab, apply, sdk_reason

log = logging.getLogger(__name__)

try:
    with warnings.catch_warnings():  # SWIG's 'no __module__ attribute' on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from pypylon import genicam, pylon
except ImportError as e:  # the cameras extra is optional
    pylon = genicam = None  # type: ignore[assignment]
    _MISSING = str(e)
else:
    _MISSING = ""


def available() -> str:
    """"" when pypylon can be used, else why not (one sentence)."""
    return f"pypylon is not installed ({_MISSING}): pip install \"inspector[cameras]\"." if _MISSING else ""


def _need() -> None:
    if _MISSING:
        raise CameraError(f"[camera] type = \"pylon\" needs {available()}")


def list_cameras() -> list[CameraInfo]:
    """Every camera pylon finds (its emulated ones too, with PYLON_CAMEMU set)."""
    _need()
    tf = pylon.TlFactory.GetInstance()
    out = []
    for d in tf.EnumerateDevices():
        try:
            ok = bool(tf.IsDeviceAccessible(d))
        except genicam.GenericException:
            ok = False
        out.append(CameraInfo("pylon", d.GetVendorName(), d.GetModelName(), d.GetSerialNumber(),
                              d.GetUserDefinedName(), d.GetDeviceClass(), ok, "" if ok else "in use or unreachable"))
    return out


def opener(cfg: CameraConfig) -> Callable[[], PylonDevice]:
    _need()
    return lambda: PylonDevice(cfg)


class PylonDevice:
    """One Basler camera, opened, set as ``[camera]`` says and grabbing (one buffer per frame, in order)."""

    def __init__(self, cfg: CameraConfig) -> None:
        self._cfg = cfg
        _need()
        tf = pylon.TlFactory.GetInstance()
        found = [d for d in tf.EnumerateDevices() if cfg.id in ("", d.GetSerialNumber(), d.GetUserDefinedName())]
        if not found:
            which = f"with serial number or user id {cfg.id!r}" if cfg.id else "at all"
            raise CameraError(f"pylon finds no camera {which}: check the cable and power, and 'inspector cameras'.")
        info = found[0]
        self.name = f"{info.GetModelName()} ({info.GetSerialNumber()})"
        try:
            self._cam = pylon.InstantCamera(tf.CreateDevice(info))
            self._cam.Open()
        except genicam.GenericException as e:
            raise CameraError(f"cannot open camera {self.name}: {_short(e)}.") from e
        self._nodes = self._cam.GetNodeMap()
        try:
            apply(cfg, self._set, self._has)
            self._format = self._nodes.GetNode("PixelFormat").ToString()
            self._cam.StartGrabbing(pylon.GrabStrategy_OneByOne)
        except BaseException:
            self._cam.Close()
            raise
        log.info("camera %s open: %s, trigger %s", self.name, self._format, cfg.trigger.value)

    def _has(self, name: str) -> bool:
        node = self._nodes.GetNode(name)
        return node is not None and genicam.IsAvailable(node)

    def _set(self, name: str, value: FeatureValue) -> None:
        node = self._nodes.GetNode(name)
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if genicam.IsReadable(node) and _same(node.ToString(), text):
            return  # already so (a changeover sets what differs; some nodes are locked while acquiring)
        if not genicam.IsWritable(node):
            raise CameraError("not writable now (some nodes cannot change while the camera acquires)")
        node.FromString(text)

    def configure(self, items: list[tuple[str, FeatureValue]]) -> None:
        apply(self._cfg, self._set, self._has, items)

    def fire(self) -> None:
        try:
            self._cam.WaitForFrameTriggerReady(1000, pylon.TimeoutHandling_Return)
            self._cam.ExecuteSoftwareTrigger()
        except genicam.GenericException as e:
            raise CameraError(f"camera {self.name} did not take the software trigger: {_short(e)}") from e

    def grab(self, timeout_s: float) -> Grab | None:
        try:
            if not self._cam.IsGrabbing():
                raise CameraError(f"camera {self.name} is not grabbing")
            res = self._cam.RetrieveResult(int(timeout_s * 1000), pylon.TimeoutHandling_Return)
        except genicam.GenericException as e:
            raise CameraError(f"camera {self.name} stopped answering: {_short(e)}") from e
        if not res.IsValid():
            if self._cam.IsCameraDeviceRemoved():
                raise CameraError(f"camera {self.name} was removed")
            return None
        try:
            fid, stamp = int(res.GetBlockID()), int(res.GetTimeStamp())
            fid = None if fid >= 2**63 else fid  # a camera without block ids says UINT64_MAX
            if not res.GrabSucceeded():
                return Grab(None, self._format, fid, stamp, f"incomplete buffer from the camera: "
                                                           f"{res.GetErrorDescription()} (code {res.GetErrorCode()})")
            return Grab(res.GetArray().copy(), self._format, fid, stamp)
        finally:
            res.Release()

    def close(self) -> None:
        try:
            if self._cam.IsGrabbing():
                self._cam.StopGrabbing()
        finally:
            self._cam.Close()
            self._cam.DetachDevice()


def _same(now: str, wanted: str) -> bool:
    if now.lower() == wanted.lower():
        return True
    try:
        return float(now) == float(wanted)
    except ValueError:
        return False


def _short(e: Exception) -> str:
    return sdk_reason(e)
