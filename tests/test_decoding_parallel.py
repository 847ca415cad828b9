"""Decodes side by side keep every damaged-file check: a cut picture is refused, a whole one beside it is not."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from inspector.sources import decoding
from inspector.sources.decoding import decode_bytes, native_messages


def _jpeg(seed: int, size: tuple[int, int] = (1224, 1024)) -> bytes:
    rng = np.random.default_rng(seed)
    im = cv2.resize(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), size, interpolation=cv2.INTER_CUBIC)
    ok, enc = cv2.imencode(".jpg", im, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return enc.tobytes()


@pytest.mark.skipif(not hasattr(os, "pread"), reason="side-by-side capture needs os.pread; here decodes take turns")
def test_whole_and_cut_pictures_decoded_side_by_side_are_each_judged_on_their_own():
    whole = [_jpeg(i) for i in range(6)]
    cut = [b[: len(b) * 2 // 3] + b"\xff\xd9" for b in whole[:3]]  # libjpeg's grey fill, and a complaint
    files = [(f"whole{i}.jpg", b) for i, b in enumerate(whole)] + [(f"cut{i}.jpg", b) for i, b in enumerate(cut)]
    files = files * 4
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda f: (f[0], decode_bytes(f[1], f[0])), files))
    for name, (img, err) in results:
        if name.startswith("cut"):
            assert img is None and "premature end" in err, (name, err)
        else:
            assert err is None and img.shape == (1024, 1224, 3), (name, err)


def test_an_exclusive_capture_hears_only_its_own_block():
    with native_messages() as msgs:
        os.write(2, b"Corrupt JPEG data: 12 extraneous bytes before marker 0xd9\n")
    assert msgs.first.startswith("Corrupt JPEG data")
    with native_messages() as quiet:
        pass
    assert not quiet


def test_log_lines_written_during_a_capture_reach_the_real_stderr(capfd):
    with native_messages(exclusive=False) as msgs:
        os.write(2, b"WARNING: a log line of another thread\n")
    assert not msgs
    assert "a log line of another thread" in capfd.readouterr().err


def test_decoding_is_faster_side_by_side_when_there_are_cores_for_it():
    """Not a timing assertion (the machine is shared): that the capture lets two decodes overlap at all."""
    if not decoding._capture.concurrent:
        pytest.skip("no os.pread on " + sys.platform)
    cap = decoding._capture
    import threading

    inside = threading.Barrier(2, timeout=5)

    def decode() -> None:
        with native_messages(exclusive=False):
            inside.wait()  # both captures open at once, or the barrier times out

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(decode), pool.submit(decode)]:
            f.result()
    assert cap._active == 0 and cap._saved is None  # fd 2 is back where it was
