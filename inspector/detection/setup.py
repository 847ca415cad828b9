"""The fastest safe inference configuration for this machine and model (``inspector tune``).

Candidates are the backends, precisions and thread counts this CPU offers; each is measured as the
station runs it (folder decoding on its own thread beside the model) on held-out parts, and kept only
when its mAP50 is within ``MAX_MAP50_DROP`` of the f32 reference and its verdicts agree on at least
``MIN_AGREEMENT`` of the parts. The figures and the choice are recorded in the data folder, keyed by
the model file's sha256 and the CPU's signature, so a changed model or machine is tuned again.

Loading a detector applies the record only where the configuration leaves the choice open
(``backend = "auto"``, ``threads = 0``); ``precision = "f32"`` keeps it to f32 candidates.
INT8 is not a candidate here: an INT8 model is a different file with its own hash and card, made
through ``inspector export --int8`` by a signed-in QC user; once chosen as the model, it is tuned too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MAX_MAP50_DROP = 0.01
MIN_AGREEMENT = 0.99
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_bf16", "amx_int8", "fma")


@dataclass(frozen=True)
class Candidate:
    """One way to run the model: backend, inference precision, inference threads."""

    backend: str
    precision: str
    threads: int
    streams: int = 1  # OpenVINO: images run at once, ``threads`` shared among them

    def __post_init__(self) -> None:
        ort_ok = self.backend != "onnxruntime" or (self.precision, self.streams) == ("f32", 1)
        if self.backend not in ("openvino", "onnxruntime") or self.precision not in ("f32", "bf16", "int8") \
                or not ort_ok \
                or not 1 <= self.streams <= self.threads:
            raise ValueError("expected an openvino f32/bf16/int8 or onnxruntime f32 candidate with "
                             "threads >= streams >= 1, "
                             f"got {self.backend} {self.precision} x{self.threads} streams {self.streams}")

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision} x{self.threads}" + (f" {self.streams} streams" if self.streams > 1
                                                                       else "")


@dataclass(frozen=True)
class Measured:
    """A candidate's figures: parts/s as the station runs it, mAP50 and verdict agreement with f32."""

    candidate: Candidate
    parts_per_s: float
    map50: float | None
    agreement: float | None
    allowed: bool
    why: str

    def as_dict(self) -> dict:
        return {**asdict(self.candidate), "label": self.candidate.label, "parts_per_s": round(self.parts_per_s, 2),
                "map50": None if self.map50 is None else round(self.map50, 4),
                "agreement": None if self.agreement is None else round(self.agreement, 4),
                "allowed": self.allowed, "why": self.why}


def cpu_flags() -> tuple[str, ...]:
    """The CPU features that decide which kernels run (from /proc/cpuinfo where there is one)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return tuple(f for f in _FLAGS if f in have)
    return ()


def openvino_capabilities() -> tuple[str, ...]:
    """OpenVINO's own word on this CPU (FP32, BF16, INT8, ...); empty without OpenVINO."""
    try:
        from inspector.core.privacy import block_openvino_telemetry

        block_openvino_telemetry()
        import openvino as ov  # type: ignore[import-untyped]

        return tuple(sorted(str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")))
    except Exception:  # noqa: BLE001 - no OpenVINO, or no CPU plugin: no capabilities
        return ()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_signature() -> dict:
    """What identifies this machine for tuning: processor, usable cores, kernel-relevant features."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": name, "cores": cores(), "flags": list(cpu_flags()), "openvino": list(openvino_capabilities())}


def signature_key(sig: dict) -> str:
    return hashlib.sha256(json.dumps(sig, sort_keys=True).encode()).hexdigest()[:16]


def candidates(n_cores: int, backends: Sequence[str], bf16: bool, model_suffix: str = ".onnx",
               int8: bool = False) -> list[Candidate]:
    """Every configuration worth measuring here: f32 first (the reference), bf16 only where the CPU has it,
    INT8 only where the model ships an INT8 variant (``int8_variant``), ONNX Runtime only for an ONNX file;
    1, all-but-one and all cores."""
    threads = sorted({1, max(1, n_cores - 1), max(1, n_cores)})
    streams = sorted({s for s in (2, n_cores) if 2 <= s <= n_cores})  # one image per core, at once
    out = []
    if "openvino" in backends:
        for prec in ("f32",) + (("bf16",) if bf16 else ()) + (("int8",) if int8 else ()):
            out += [Candidate("openvino", prec, t) for t in threads]
            out += [Candidate("openvino", prec, s, s) for s in streams]
    if "onnxruntime" in backends and model_suffix == ".onnx":
        out += [Candidate("onnxruntime", "f32", t) for t in threads]
    return out


def judge(ref_map50: float | None, ref_verdicts: Sequence[str], map50: float | None,
          verdicts: Sequence[str]) -> tuple[bool, float | None, str]:
    """(allowed, agreement, why) of a candidate against the f32 reference on the same held-out parts."""
    if ref_map50 is None or map50 is None or not ref_verdicts or len(ref_verdicts) != len(verdicts):
        return False, None, "not verified on labelled held-out parts"
    agree = sum(a == b for a, b in zip(ref_verdicts, verdicts, strict=True)) / len(ref_verdicts)
    drop = ref_map50 - map50
    if drop > MAX_MAP50_DROP:
        return False, agree, f"mAP50 {drop:.3f} below f32 (at most {MAX_MAP50_DROP:g})"
    if agree < MIN_AGREEMENT:
        return False, agree, f"verdicts agree on {agree:.1%} of parts (at least {MIN_AGREEMENT:.0%})"
    return True, agree, f"mAP50 within {MAX_MAP50_DROP:g} of f32, verdicts agree on {agree:.1%}"


def pick(measured: Sequence[Measured], allow_bf16: bool = True) -> Measured | None:
    """The fastest allowed candidate (f32 only when reduced precision, bf16 or INT8, is not allowed)."""
    ok = [m for m in measured if m.allowed and (allow_bf16 or m.candidate.precision == "f32")]
    return max(ok, key=lambda m: m.parts_per_s) if ok else None


# records -----------------------------------------------------------------------------------------
def record_path(model_sha256: str, sig_key: str) -> Path:
    from inspector.core.home import data_home

    return data_home() / "tune" / f"{model_sha256[:16]}-{sig_key}.json"


def save_record(model_sha256: str, model_name: str, sig: dict, measured: Sequence[Measured],
                reference: str, images: int) -> Path:
    """Write the figures and the choice (atomically) where ``load_record`` finds them."""
    best = pick(measured)
    record = {"model_sha256": model_sha256, "model": model_name, "cpu": sig, "reference": reference,
              "held_out_parts": images, "max_map50_drop": MAX_MAP50_DROP, "min_agreement": MIN_AGREEMENT,
              "chosen": best.as_dict() if best else None, "candidates": [m.as_dict() for m in measured],
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    path = record_path(model_sha256, signature_key(sig))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # two processes tuning at once
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)
    return path


def load_record(model_sha256: str, sig: dict | None = None) -> dict | None:
    """This machine's record for the model, or None (never tuned here, or for another model or CPU)."""
    path = record_path(model_sha256, signature_key(sig or cpu_signature()))
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("model_sha256") == model_sha256 else None


def choice(model_sha256: str, backend: str, threads: int, precision: str, suffix: str,
           sig: dict | None = None, int8_ok: bool = False) -> tuple[Candidate | None, dict]:
    """The tuned candidate for a model as configured (None: keep the configuration), and what to show.

    The record applies only where the configuration leaves the choice open: ``backend`` auto and
    ``threads`` 0; ``precision`` f32 limits it to f32 candidates; an INT8 one only where ``int8_ok`` (the
    model's trusted INT8 variant is there)."""
    record = load_record(model_sha256, sig)
    if record is None:
        return None, {"status": "not tuned on this machine for this model: run 'inspector tune' (a first "
                                "'inspector run' also tunes when it ends)"}
    shown = {"status": "tuned", "date": record.get("date"), "cpu_flags": record.get("cpu", {}).get("flags", []),
             "chosen": record.get("chosen"), "candidates": len(record.get("candidates", []))}
    if backend != "auto" or threads != 0:
        shown["status"] = "tuned, not applied: the configuration sets the backend or the threads"
        return None, shown
    ok = []
    for m in record.get("candidates", []):
        try:
            c = Candidate(m["backend"], m["precision"], int(m["threads"]), int(m.get("streams", 1)))
        except (KeyError, TypeError, ValueError):
            continue
        if m.get("allowed") and (precision == "bf16" or c.precision == "f32") \
                and (suffix == ".onnx" or c.backend == "openvino") and (c.precision != "int8" or int8_ok):
            ok.append((float(m.get("parts_per_s", 0)), c, m))
    if not ok:
        shown["status"] = "tuned, no allowed candidate fits the configuration: configuration kept"
        return None, shown
    _, best, m = max(ok, key=lambda x: x[0])
    shown.update(status="applied", applied={"backend": best.backend, "precision": best.precision,
                                            "threads": best.threads, "streams": best.streams,
                                            "parts_per_s": m.get("parts_per_s"),
                                            "map50": m.get("map50"), "agreement": m.get("agreement")})
    return best, shown


def setup_text(shown: dict | None) -> str:
    """One line for the health panel: what runs, and whether the tune record chose it."""
    if not shown:
        return ""
    run = shown.get("running") or {}
    what = f"{run.get('backend', '?')} {run.get('precision', '?')} x{run.get('threads', '?')}"
    what += f" {run['streams']} streams" if run.get("streams", 1) > 1 else ""
    status = shown.get("status", "")
    if status == "applied":
        applied = shown.get("applied") or {}
        return f"{what} · tuned {str(shown.get('date') or '')[:10]} ({applied.get('parts_per_s')} parts/s measured)"
    return f"{what} · {status}"
