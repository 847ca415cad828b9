"""One typed configuration tree, loaded from TOML; every field says what it is for.

A wrong value is rejected with the key, the value and what is allowed (``ConfigError``).
"""

from __future__ import annotations

import tomllib
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer, model_validator

from inspector.core.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Backend(str, Enum):
    AUTO = "auto"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    ULTRALYTICS = "ultralytics"


class SaveImages(str, Enum):
    ALL = "all"
    FAILED = "failed"
    NONE = "none"


class RunMode(str, Enum):
    PART = "part"
    STREAM = "stream"


class ClassRule(_Section):
    fail_conf: float | None = Field(
        None, ge=0, le=1, description="Confidence at or above which this class fails the part.")
    review_conf: float | None = Field(
        None, ge=0, le=1, description="Confidence from which this class sends the part to QC review.")
    min_area_px: float | None = Field(
        None, ge=0, description="Boxes of this class smaller than this many pixels are ignored.")


class RecipeConfig(_Section):
    name: str = Field(
        "default", min_length=1, description="Name of the recipe, shown on screen and stored with each run.")
    fail_conf: float = Field(
        0.5, ge=0, le=1, description="Default confidence at or above which a defect fails the part.")
    review_conf: float = Field(
        0.25, ge=0, le=1,
        description="Default confidence from which a defect sends the part to review; below it the box is ignored.")
    min_area_px: float = Field(0.0, ge=0, description="Boxes smaller than this many pixels are ignored.")
    roi: tuple[float, float, float, float] | None = Field(
        None, description="Region of interest as fractions of the frame (x1, y1, x2, y2); "
                          "boxes whose centre lies outside are ignored.")
    classes: dict[str, ClassRule] = Field(default_factory=dict, description="Per-class overrides by class name.")
    tile_size: int | Literal["auto"] = Field(
        0, description="Judge the picture in square tiles of this many camera pixels, each at the model's own "
                       "scale (small defects on large pictures); \"auto\" takes the tiles the model was trained "
                       "on (its card); 0 = off: the whole picture is shrunk to the model's input.")
    tile_overlap: int = Field(
        0, ge=0, description="Pixels that neighbouring tiles share (at least the size of a defect, so that one "
                             "cut by a tile's border is whole in its neighbour); with tile_size = \"auto\" the "
                             "model's card decides.")

    @field_validator("tile_size")
    @classmethod
    def _tile_size(cls, v):
        if isinstance(v, int) and v != 0 and not 32 <= v <= 8192:
            raise ValueError("tile_size must be 0 (off), \"auto\" or 32 to 8192 camera pixels")
        return v

    @model_serializer(mode="wrap")
    def _tiles_off_unwritten(self, handler):
        # tiles off are not written, so that a recipe's values (and the hash stored for it) stay as before
        data = handler(self)
        if isinstance(data, dict) and not self.tile_size:
            data.pop("tile_size", None)
            if not self.tile_overlap:
                data.pop("tile_overlap", None)
        return data

    @field_validator("roi")
    @classmethod
    def _roi(cls, v):
        if v is not None:
            x1, y1, x2, y2 = v
            if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
                raise ValueError("roi must be fractions 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1")
        return v

    @model_validator(mode="after")
    def _bands(self):
        if self.review_conf > self.fail_conf:
            raise ValueError(f"review_conf ({self.review_conf}) must not be above fail_conf ({self.fail_conf})")
        for name, r in self.classes.items():
            f = r.fail_conf if r.fail_conf is not None else self.fail_conf
            rv = r.review_conf if r.review_conf is not None else self.review_conf
            if rv > f:
                raise ValueError(f"classes.{name}: review_conf ({rv}) must not be above fail_conf ({f})")
        if isinstance(self.tile_size, int) and self.tile_size and self.tile_overlap >= self.tile_size:
            raise ValueError(f"tile_overlap ({self.tile_overlap}) must be smaller than tile_size ({self.tile_size})")
        return self


class ModelConfig(_Section):
    path: Path | None = Field(None, description="Model file (.pt or .onnx) or folder; empty means the shipped model.")
    backend: Backend = Field(Backend.AUTO, description="Inference backend: auto picks the fastest one installed.")
    imgsz: int = Field(
        320, ge=32, le=4096, multiple_of=32, description="Inference image size in pixels (a multiple of 32).")
    iou: float = Field(0.5, gt=0, le=1, description="Overlap above which two boxes of a class are merged (NMS).")
    threads: int = Field(0, ge=0, le=256, description="CPU threads for inference; 0 lets Inspector choose.")
    precision: str = Field("bf16", pattern="^(f32|bf16)$",
                           description="OpenVINO inference precision: bf16 (fast on CPUs with AMX/AVX-512 BF16, "
                                       "the same choice Ultralytics' OpenVINO path makes) or f32 (bit-for-bit "
                                       "the PyTorch results, slower).")
    timeout_s: float = Field(10.0, gt=0, description="An inference slower than this marks the part NOT_INSPECTED.")
    autotune: bool = Field(
        True, description="When a model's first headless run on this machine ends (no 'inspector tune' record "
                          "yet, backend auto, threads 0): a short tune of backends, precisions, threads and "
                          "streams (seconds to a minute, once), and from the next start on the fastest safe "
                          "set-up runs. The first run itself never waits for it. The set-up may be two streams, "
                          "which give the model both cores: the most parts/s end to end, but the rest of the "
                          "station then shares those cores (see README, Performance). False: the configuration "
                          "as it is.")


class QualityConfig(_Section):
    min_contrast: float = Field(
        4.0, ge=0, description="A frame whose grey-level spread is below this is blank: NOT_INSPECTED.")
    min_brightness: float = Field(
        8.0, ge=0, le=255, description="A frame darker than this on average is black: NOT_INSPECTED.")
    frozen_frames: int = Field(
        25, ge=0, description="A live stream repeating the same content this many times is frozen (0 = off).")
    frozen_diff: float = Field(
        3.0, ge=0, le=255,
        description="Pictures whose 64x64 grey thumbnails differ by at most this mean grey level count as the "
                    "same content (tolerates encoder and sensor noise; a moving part differs by far more). "
                    "Brightness and contrast are evened out first, so a flickering frozen picture is the same.")
    loop_frames: int = Field(
        8, ge=0, le=64,
        description="A live stream is also frozen when it keeps showing pictures it showed among its last this "
                    "many different ones (a stream looping a few pictures); 0 compares with the last picture only.")
    max_smeared: float = Field(
        0.04, ge=0, le=1,
        description="A video or stream picture of which more than this share of 8x8 blocks is smeared (rows "
                    "repeated down the block while it has detail across: a decoder hiding damage) is "
                    "NOT_INSPECTED; 0 = off.")
    min_side_px: int = Field(
        0, ge=0, description="Pictures whose shorter side is below this many pixels are NOT_INSPECTED; "
                             "0 means a quarter of model.imgsz.")


class CameraType(str, Enum):
    OPENCV = "opencv"
    GENICAM = "genicam"
    PYLON = "pylon"


class CameraTrigger(str, Enum):
    FREE = "free"
    SOFTWARE = "software"
    HARDWARE = "hardware"


FeatureValue = bool | int | float | str


class CameraConfig(_Section):
    type: CameraType = Field(
        CameraType.OPENCV, description="opencv: --source (folder, video, camera index, URL); genicam: a GenICam "
                                       "camera through a GenTL producer (harvesters); pylon: a Basler camera "
                                       "(pypylon).")
    id: str = Field("", max_length=200, description="The camera's serial number or user id (genicam, pylon); empty "
                                                    "means the first one found.")
    cti: tuple[Path, ...] = Field((), description="GenTL producer files (.cti) to load (genicam); empty means those "
                                                  "named by GENICAM_GENTL64_PATH.")
    trigger: CameraTrigger = Field(
        CameraTrigger.FREE, description="free: the camera runs continuously; software: each line trigger fires the "
                                        "camera once; hardware: the camera's own line input fires it (genicam, pylon).")
    hardware_line: str = Field("Line1", min_length=1, description="The camera input the hardware trigger is wired "
                                                                  "to (TriggerSource).")
    pair_window_s: float = Field(0.5, ge=0, le=10, description="hardware: how long a frame waits for the line's "
                                                                "trigger that arrives after it (paired by order).")
    pixel_format: str = Field("", description="PixelFormat to set (Mono8, Mono12, BayerRG8, RGB8, BGR8, ...); empty "
                                              "leaves the camera's.")
    exposure_us: float | None = Field(None, gt=0, description="Exposure time in microseconds; empty leaves the "
                                                              "camera's.")
    gain_db: float | None = Field(None, ge=0, description="Gain in dB; empty leaves the camera's.")
    region: tuple[int, int, int, int] | None = Field(
        None, description="Region of interest on the sensor as [x, y, width, height] in pixels; empty: the camera's.")
    binning: int = Field(1, ge=1, le=8, description="Horizontal and vertical binning (1 = none).")
    features: dict[str, FeatureValue] = Field(
        default_factory=dict, description="Further GenICam nodes to set ([camera.features] Node = value), in the "
                                          "order written, after the settings above.")
    open_timeout_s: float = Field(5.0, gt=0, description="How long to wait for a camera or stream to open.")
    read_timeout_s: float = Field(5.0, gt=0, description="How long to wait for one frame before counting a stall.")
    reconnect_initial_s: float = Field(
        0.5, gt=0, description="First wait before reconnecting; it doubles each attempt.")
    reconnect_max_s: float = Field(10.0, gt=0, description="Longest wait between reconnect attempts.")
    max_reconnects: int = Field(0, ge=0, description="Give up after this many failed reconnects in a row (0 = never).")

    @field_validator("cti", mode="before")
    @classmethod
    def _cti(cls, v):
        """An empty entry (the settings screen's empty field, the README's "") is no producer, never '.'."""
        if isinstance(v, (list, tuple)):
            return tuple(p for p in v if str(p).strip())
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if v is not None and (v[0] < 0 or v[1] < 0 or v[2] <= 0 or v[3] <= 0):
            raise ValueError(f"region {list(v)} must be [x >= 0, y >= 0, width > 0, height > 0]")
        return v

    @field_validator("features")
    @classmethod
    def _features(cls, v: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
        import re

        for name in v:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,99}", name):
                raise ValueError(f"{name!r} is not a GenICam node name (letters, digits, '_')")
        return v


class StorageConfig(_Section):
    db_url: str = Field(
        "", description="Database URL (sqlite:///file.db or postgresql://...); empty means the user's data folder.")
    data_dir: Path | None = Field(None, description="Folder for saved images; empty means beside the database.")
    image_root: Path | None = Field(
        None, description="A folder the plant shares (a network share mounted at this path on every PC): each "
                          "station saves its pictures in a folder of its own under it, and any review screen finds "
                          "them there; empty means this station's own disk (data_dir, or beside the database).")
    model_root: Path | None = Field(
        None, description="A folder the plant shares for promoted model files: a promotion puts the file there "
                          "under its SHA-256, and a station told to run a model it lacks copies it from there, "
                          "checking the hash before it loads it; empty means image_root's 'models' folder when "
                          "image_root is set, else none (a promoted file must then be at the same path on every "
                          "station).")
    save_images: SaveImages = Field(SaveImages.ALL, description="Which inspected frames to save as JPEG.")
    jpeg_quality: int = Field(
        90, ge=10, le=100, description="JPEG quality of saved frames (a JPEG file from a folder is kept as it is).")
    keep_pass_fraction: float = Field(1.0, ge=0, le=1, description="Share of PASS images kept by retention.")
    max_images_mb: float = Field(0, ge=0, description="Size cap of the image folder in MB (0 = no cap).")
    write_deadline_s: float = Field(
        5.0, gt=0, le=600, description="Longest a write to the database may take before the station reacts: with a "
        "database server the parts go to the local outbox; with an SQLite file the station shows 'not ready' "
        "(red) while parts wait in a bounded queue.")


class RunConfig(_Section):
    mode: RunMode = Field(
        RunMode.PART, description="part: every frame is a part, none dropped; stream: newest frame wins.")
    queue_size: int = Field(8, ge=1, le=1024, description="Frames waiting between stages.")
    station: str | None = Field(
        None, min_length=1, description="Older name of [station] name, still read; leave empty and set the "
                                        "station's name in [station].")


class StationConfig(_Section):
    name: str | None = Field(
        None, min_length=1, max_length=200,
        description="Name of this inspection station (reports, image folder, line topics); empty means the host "
                    "name.")


class LineTrigger(str, Enum):
    NONE = "none"
    MQTT = "mqtt"
    OPCUA = "opcua"
    MODBUS = "modbus"


def _empty_is_none(v):
    """A file setting written as "" (as the README's examples do) means none, not the current folder."""
    return None if isinstance(v, str) and not v.strip() else v


class LineMqttConfig(_Section):
    url: str = Field(
        ..., pattern=r"^mqtts?://[^/\s:]+(:\d{1,5})?/?$",
        description="Broker address: mqtt://host:1883, or mqtts://host:8883 for TLS.")
    user: str = Field("", description="User name at the broker (empty: none).")
    password: str = Field("", description="Password at the broker.")
    ca_file: Path | None = Field(None, description="CA certificate (PEM) the broker's TLS certificate is checked "
                                                   "against; empty means the system's.")
    cert_file: Path | None = Field(None, description="Client certificate (PEM) for brokers that ask for one.")
    key_file: Path | None = Field(None, description="Private key (PEM) of the client certificate.")
    tls_insecure: bool = Field(False, description="Accept a broker certificate whose host name does not match "
                                                  "(testing only).")
    client_id: str = Field("", description="MQTT client id; empty means inspector-<station>.")
    keepalive_s: int = Field(10, ge=2, le=3600,
                             description="Keep-alive: the broker publishes the last will (ready: false, offline) "
                                         "after about 1.5 times this without a word from the station.")

    _empty_files_are_none = field_validator("ca_file", "cert_file", "key_file", mode="before")(
        classmethod(lambda cls, v: _empty_is_none(v)))


class OpcuaSecurity(str, Enum):
    NONE = "none"
    SIGN = "basic256sha256_sign"
    SIGN_AND_ENCRYPT = "basic256sha256_signandencrypt"


class LineOpcuaConfig(_Section):
    endpoint: str = Field("opc.tcp://0.0.0.0:4840", pattern=r"^opc\.tcp://[^/\s]+(:\d{1,5})?(/\S*)?$",
                          description="Endpoint the station's OPC UA server listens on (opc.tcp://host:port).")
    user: str = Field("", description="User name a client must give (empty: anonymous, if allowed).")
    password: str = Field("", description="Password of that user.")
    allow_anonymous: bool = Field(False, description="Let clients connect without a user name.")
    security: tuple[OpcuaSecurity, ...] = Field(
        (OpcuaSecurity.SIGN, OpcuaSecurity.SIGN_AND_ENCRYPT), min_length=1,
        description="Security policies offered: basic256sha256_sign, basic256sha256_signandencrypt; none (no "
                    "signature, no encryption) only when listed here.")
    cert_file: Path | None = Field(None, description="The server's certificate (DER or PEM); empty: a self-signed "
                                                     "one the station makes once in its data folder.")
    key_file: Path | None = Field(None, description="The private key (PEM) of cert_file.")

    @field_validator("security", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return (v,) if isinstance(v, str) else v

    _empty_files_are_none = field_validator("cert_file", "key_file", mode="before")(
        classmethod(lambda cls, v: _empty_is_none(v)))

    @model_validator(mode="after")
    def _who_may_connect(self):
        if not self.user and not self.allow_anonymous:
            raise ValueError("nobody could connect: set user and password, or allow_anonymous = true")
        if self.user and not self.password:
            raise ValueError(f"user = {self.user!r} has no password: set password")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: set both, or neither for a self-signed one")
        return self


class LineModbusConfig(_Section):
    host: str = Field("127.0.0.1", min_length=1, description="Address the Modbus TCP server listens on (the "
                                                             "machine network's interface; 0.0.0.0: all).")
    port: int = Field(5020, ge=1, le=65535, description="TCP port of the Modbus server (502 needs privileges).")
    clients: tuple[str, ...] = Field((), description="IP addresses of the PLCs allowed to connect; empty: any "
                                                     "(a warning at every start).")

    @field_validator("clients", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return (v,) if isinstance(v, str) else v

    @field_validator("clients")
    @classmethod
    def _addresses(cls, v):
        import ipaddress

        return tuple(str(ipaddress.ip_address(a)) for a in v)  # ValueError names a bad one


class LineConfig(_Section):
    trigger: LineTrigger = Field(
        LineTrigger.NONE, description="Where part triggers come from: none (free-running), mqtt, opcua or modbus.")
    trigger_timeout_s: float = Field(
        2.0, gt=0, le=60, description="A trigger whose picture cannot be had within this many seconds is answered "
                                      "NOT_INSPECTED.")
    max_trigger_age_ms: int = Field(
        2000, ge=1, le=600_000,
        description="A trigger that carries the PLC's time ('ts') and is older than this on arrival (a link or a "
                    "station that stalled) is answered NOT_INSPECTED 'stale', never inspected.")
    repeat_window_h: float = Field(
        24.0, ge=0, le=24 * 366,
        description="A part_id triggered again is answered with its first result if that was recorded by this "
                    "station within this many hours (also before a restart); 0: within the current run only.")
    mqtt: LineMqttConfig | None = Field(None, description="MQTT link (no section: no MQTT).")
    opcua: LineOpcuaConfig | None = Field(None, description="OPC UA server (no section: none).")
    modbus: LineModbusConfig | None = Field(None, description="Modbus TCP server (no section: none).")

    @model_validator(mode="after")
    def _trigger_has_link(self):
        if self.trigger != LineTrigger.NONE and getattr(self, self.trigger.value) is None:
            raise ValueError(f"trigger = {self.trigger.value!r} needs a [line.{self.trigger.value}] section")
        return self


class DisplayConfig(_Section):
    fail_hold_s: float = Field(
        1.5, ge=0, le=60, description="Seconds a FAIL stays on the live banner before a newer part replaces it.")


class ProductConfig(_Section):
    """One product the line makes: what inspects it and what decides its verdict (``[products.NAME]``)."""

    model: Path | None = Field(None, description="Model file of this product; empty means [model] path.")
    recipe: RecipeConfig = Field(default_factory=RecipeConfig,
                                 description="How this product's detections become a verdict (region of interest, "
                                             "per-class thresholds).")
    classes: tuple[str, ...] = Field((), description="Defect classes expected on this product; the model must "
                                                     "report each of them.")
    camera: dict[str, FeatureValue] = Field(
        default_factory=dict, description="GenICam nodes this product sets on the camera ([products.NAME.camera] "
                                          "ExposureTime = 800), after [camera.features], when the product starts.")

    @field_validator("camera")
    @classmethod
    def _camera(cls, v: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
        return CameraConfig._features(v)


_SHIFT = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"


class AlarmsConfig(_Section):
    fail_streak: int = Field(0, ge=0, le=10_000, description="Raise an alarm after this many FAIL parts in a row "
                                                             "(0 = off).")
    min_yield_pct: float = Field(0.0, ge=0, le=100, description="Raise an alarm when the yield over the last "
                                                                "yield_window parts is under this (0 = off).")
    yield_window: int = Field(50, ge=1, le=100_000, description="Parts the yield alarm looks at.")
    max_not_inspected_pct: float = Field(
        0.0, ge=0, le=100, description="Raise an alarm when the share of NOT_INSPECTED parts over the last "
                                       "not_inspected_window parts is over this (0 = off).")
    not_inspected_window: int = Field(50, ge=1, le=100_000, description="Parts the NOT_INSPECTED alarm looks at.")


class ShadowConfig(_Section):
    model: Path | None = Field(
        None, description="Challenger model file run in shadow beside the active model on a share of live parts; "
                          "its verdicts are recorded apart and never judge a part. Empty: no shadow.")
    share: float = Field(0.2, gt=0, le=1, description="Share of the live parts the challenger also judges.")
    agreement_parts: int = Field(
        500, ge=10, le=100000, description="The Models tab shows agreement over this many latest shadow parts.")


class Config(_Section):
    model: ModelConfig = Field(default_factory=ModelConfig, description="The detector.")
    recipe: RecipeConfig = Field(default_factory=RecipeConfig, description="How detections become a verdict.")
    quality: QualityConfig = Field(default_factory=QualityConfig, description="Frames that cannot be judged.")
    camera: CameraConfig = Field(default_factory=CameraConfig, description="Cameras and streams.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Database and images.")
    run: RunConfig = Field(default_factory=RunConfig, description="The runner.")
    display: DisplayConfig = Field(default_factory=DisplayConfig, description="The live screen.")
    station: StationConfig = Field(default_factory=StationConfig, description="This station.")
    line: LineConfig = Field(default_factory=LineConfig, description="Triggers from and results to the PLC.")
    products: dict[str, ProductConfig] = Field(
        default_factory=dict, description="Products by name ([products.NAME]); the operator picks one on the live "
                                          "screen.")
    shifts: dict[str, str] = Field(
        default_factory=dict, description='Shifts by name, as "HH:MM-HH:MM" in the station\'s time zone (a shift '
                                          'may cross midnight: it belongs to the date it starts).')
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig, description="Alarms the operator acknowledges.")
    shadow: ShadowConfig = Field(default_factory=ShadowConfig, description="A challenger model in shadow mode.")

    @field_validator("shifts")
    @classmethod
    def _shifts(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for name, span in v.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,20}", name):
                raise ValueError(f"shift name {name!r} must be 1 to 20 letters, digits, '-' or '_'")
            if not re.fullmatch(_SHIFT, span) or span[:5] == span[6:]:
                raise ValueError(f"shift {name} = {span!r} must be a span such as \"06:00-14:00\"")
        return v

    @field_validator("products")
    @classmethod
    def _product_names(cls, v: dict[str, ProductConfig]) -> dict[str, ProductConfig]:
        import re

        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", name):
                raise ValueError(f"product name {name!r} must be 1 to 100 letters, digits, '.', '-' or '_'")
        return v

    @model_validator(mode="after")
    def _one_station_name(self):
        if self.station.name and self.run.station and self.station.name != self.run.station:
            raise ValueError(f"[station] name = {self.station.name!r} and the older run.station = "
                             f"{self.run.station!r} disagree: keep [station] name and remove run.station")
        return self

    @property
    def station_name(self) -> str:
        """[station] name, else the older run.station, else the host name."""
        import socket

        return self.station.name or self.run.station or socket.gethostname() or "station"


def _explain(e: ValidationError, where: str) -> ConfigError:
    msgs = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = err.get("input")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        msgs.append(f"{key} = {value!r}: {msg}")
    return ConfigError(f"{where}: " + "; ".join(msgs))


def config_from_dict(data: dict[str, Any], where: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise _explain(e, where) from None


def load_config(path: Path | str | None) -> Config:
    """Read a TOML file into a ``Config``; ``None`` gives the defaults."""
    if path is None:
        return Config()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None
    from inspector.core.home import data_home
    from inspector.core.secrets import apply_secrets

    return config_from_dict(apply_secrets(data, str(p), data_home()), str(p))


def load_recipe(path: Path | str) -> RecipeConfig:
    """A recipe file holds the fields of [recipe] at its top level."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"recipe file not found: {p}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from None
    try:
        return RecipeConfig.model_validate(data.get("recipe", data))
    except ValidationError as e:
        raise _explain(e, str(p)) from None


def to_toml(cfg: Config) -> str:
    """Serialise a Config to TOML (all is written). tomli-w writes it, so any key the loader accepts (a product
    or class name with a dot or a space) is quoted as TOML needs."""
    import tomli_w

    return tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True))


def save_config(cfg: Config, path: Path) -> None:
    """Validate by round trip, then write atomically: nothing half-saved."""
    text = to_toml(cfg)
    try:
        again = config_from_dict(tomllib.loads(text), str(path))
    except tomllib.TOMLDecodeError as e:  # a writer fault: the file is not touched
        raise ConfigError(f"{path}: the configuration could not be written as TOML ({e}); nothing was saved") from None
    if again != cfg:
        raise ConfigError(f"{path}: the configuration would not read back as it is; nothing was saved")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
