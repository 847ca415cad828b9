"""Frame sources on real files, and a live source on a fake camera that fails on cue."""

import time

import cv2
import numpy as np
import pytest

from inspector.core.config import CameraConfig
from inspector.core.errors import SourceError
from inspector.sources.folder import FolderSource
from inspector.sources.live import LiveSource
from inspector.sources.opening import open_source
from inspector.sources.video import VideoSource
from tests.fakes import FakeCameraDevice


def _write_folder(tmp_path, part_image):
    cv2.imwrite(str(tmp_path / "a.jpg"), part_image)
    (tmp_path / "b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (tmp_path / "c_empty.png").write_bytes(b"")
    cv2.imwrite(str(tmp_path / "d.png"), part_image)
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


def test_folder_source_sorted_with_corrupt_files_as_gaps(tmp_path, part_image):
    src = FolderSource(_write_folder(tmp_path, part_image))
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    assert [f.name.rsplit("/", 1)[-1] for f in frames] == ["a.jpg", "b_corrupt.jpg", "c_empty.png", "d.png"]
    assert all(f.name.startswith("/") or ":" in f.name for f in frames)  # full paths, to find the original
    assert [f.ok for f in frames] == [True, False, False, True]
    assert "image incomplete" in frames[1].error and "empty file" in frames[2].error
    assert [f.seq for f in frames] == [0, 1, 2, 3]


def test_folder_loop_repeats(tmp_path, part_image):
    cv2.imwrite(str(tmp_path / "a.jpg"), part_image)
    src = FolderSource(tmp_path, loop=True)
    assert [src.read().name.endswith("/a.jpg") for _ in range(3)] == [True] * 3


def test_video_source_reads_every_frame(tmp_path, part_image):
    path = tmp_path / "line.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (part_image.shape[1], part_image.shape[0]))
    for _ in range(5):
        w.write(part_image)
    w.release()
    src = VideoSource(path)
    n = 0
    while src.read() is not None:
        n += 1
    assert n == 5


@pytest.mark.parametrize("spec, fragment", [
    ("no/such/folder", "source not found"),
    ("ftp://host/stream", "unsupported stream URL"),
])
def test_bad_sources(spec, fragment):
    with pytest.raises(SourceError, match=fragment):
        open_source(spec)


def test_empty_folder_and_unreadable_video(tmp_path):
    with pytest.raises(SourceError, match="no image files"):
        open_source(str(tmp_path))
    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="cannot open video"):
        open_source(str(bad))


FAST = CameraConfig(open_timeout_s=1, read_timeout_s=0.3, reconnect_initial_s=0.05, reconnect_max_s=0.1)


def wait_until(pred, what: str, timeout_s: float = 30.0) -> None:
    """A bounded poll: returns as soon as ``pred()`` holds; fails naming ``what`` after ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < end, f"not within {timeout_s:g} s: {what}"
        time.sleep(0.01)


def _read_pictures(src, n: int, limit: int = 40) -> list:
    """The next ``n`` pictures (``Gap`` ticks skipped), and the gaps seen on the way."""
    from inspector.core.types import Gap

    got, gaps = [], []
    for _ in range(limit):
        item = src.read()
        if item is None:
            break
        (gaps if isinstance(item, Gap) else got).append(item)
        if len(got) == n:
            break
    return got, gaps


def test_live_source_drop_garbage_and_recovery_are_gaps_not_parts():
    """A free-running camera's drop and garbage frame are events (counted, timed), never parts."""
    device = FakeCameraDevice([["frame", "garbage", "frame", "drop"], None, ["frame"] * 50])
    states = []
    src = LiveSource("fake", device, FAST, on_state=states.append)
    got, _ = _read_pictures(src, 4)
    src.close()
    assert all(f.ok for f in got) and [f.seq for f in got] == [0, 1, 2, 3]  # parts numbered without holes
    assert src.reconnects == 1
    assert src.gaps == 2  # the garbage frame and the drop
    assert src.gap_s > 0.05  # the drop lasted at least the reconnect back-off
    assert any(s.state == "reconnecting" for s in states)
    assert states[-1].gaps == 2 and "2 gaps" in states[-1].health()


def test_live_source_hang_is_a_stall_and_a_gap_not_a_substitute_frame():
    from inspector.core.types import Gap

    device = FakeCameraDevice([["frame", "hang", "frame"]])
    states = []
    src = LiveSource("fake", device, FAST, on_state=states.append)
    first = src.read()
    t0 = time.monotonic()
    second = src.read()
    cam = device.cameras[0]
    # the caller gets control back, no part, while the camera still hangs (it hangs until released)
    assert isinstance(second, Gap) and "stall" in second.reason
    assert cam.hanging.is_set() and not cam.unhang.is_set()
    cam.unhang.set()
    third, _ = _read_pictures(src, 1)
    took = time.monotonic() - t0
    src.close()
    assert first.ok
    assert third[0].ok and third[0].seq == 1
    assert src.stalls >= 1 and src.gaps == 1
    # the stall is reported at once, with the camera's time so far: a rate per hour on screen
    stalled = [s for s in states if s.stalls == 1 and s.state == "running"]
    assert stalled and stalled[0].uptime_s > 0.2  # at least the read timeout (0.3 s) of camera time
    assert stalled[0].per_hour(stalled[0].stalls) == pytest.approx(3600 / stalled[0].uptime_s)
    assert "1 stall in 0:00:00" in stalled[0].health()
    # logged and counted with its duration when pictures came back: the hang, from the stall to the release
    assert FAST.read_timeout_s * 0.9 <= src.gap_s <= took


def test_camera_state_rates():
    from inspector.sources.live import CameraState

    st = CameraState("running", reconnects=6, stalls=3, uptime_s=7200)
    assert (st.per_hour(st.reconnects), st.per_hour(st.stalls)) == (3.0, 1.5)
    assert st.health() == "6 reconnects, 3 stalls in 2:00:00 (3.0/h, 1.5/h)"
    assert CameraState("connecting").per_hour(5) == 0.0
    assert CameraState("running").health() == "no reconnects or stalls"


def test_live_source_gives_up_after_max_reconnects():
    cfg = FAST.model_copy(update={"max_reconnects": 2})
    device = FakeCameraDevice([["drop"], None, None, None])
    states = []
    src = LiveSource("fake", device, cfg, on_state=states.append)
    got, gaps = _read_pictures(src, 10)
    assert states[-1].state == "stopped" and "gave up after 2" in states[-1].reason
    assert got == [] and src.read() is None  # no part was made of the outage
    assert src.gaps == 1


def test_camera_that_never_opens():
    with pytest.raises(SourceError, match="cannot open camera"):
        LiveSource("fake", FakeCameraDevice([None]), FAST)


def test_frame_rejects_bad_images():
    from inspector.core.types import Frame

    with pytest.raises(ValueError, match="HxWx3 uint8"):
        Frame(np.zeros((4, 4), np.uint8), 0, "s", 0.0)
    with pytest.raises(ValueError, match="error reason"):
        Frame(None, 0, "s", 0.0)


def test_a_flooding_camera_cannot_push_a_drop_notice_out():
    """Frames flood in right after a reconnect: the gap is still counted (newest wins among pictures only)."""
    device = FakeCameraDevice([["frame", "drop"], ["frame"] * 500])
    src = LiveSource("fake", device, FAST)
    wait_until(lambda: len(device.cameras) == 2 and device.cameras[1].reads >= 50, "the camera reconnected and "
               "flooded the buffer")
    got, _ = _read_pictures(src, 3)
    src.close()
    assert len(got) == 3 and src.gaps == 1


def test_newest_frames_buffer_keeps_notices_and_drops_old_pictures():
    from inspector.sources.live import _NewestFrames

    b = _NewestFrames(2)
    pics = [np.full((2, 2, 3), i, np.uint8) for i in range(4)]
    b.put(pics[0])
    b.put("gap")
    for p in pics[1:]:
        b.put(p)
    got = [b.get(0.1) for _ in range(3)]
    assert got[0] == "gap" and [int(g[0, 0, 0]) for g in got[1:]] == [2, 3]
    assert b.empty()


def test_a_jpeg_part_is_stored_as_it_came_other_formats_are_encoded(tmp_path, part_image):
    """The saved picture of a JPEG file is that file, byte for byte (no second lossy encoding); a
    PNG is encoded once; a corrupt file has nothing to keep."""
    from inspector.core.config import RecipeConfig
    from inspector.core.images import ImageStore
    from inspector.inspection.pipeline import Pipeline
    from inspector.inspection.rules import Recipe
    from tests.conftest import ScriptedDetector

    (tmp_path / "in").mkdir()
    folder = _write_folder(tmp_path / "in", part_image)
    store = ImageStore(tmp_path / "out", "images", quality=50)
    pipeline = Pipeline(ScriptedDetector([[]]), Recipe(RecipeConfig()))
    src = FolderSource(folder)
    saved = {}
    while (f := src.read()) is not None:
        rel = store.save(pipeline.inspect(f))
        saved[f.name.rsplit("/", 1)[-1]] = (tmp_path / "out" / rel).read_bytes() if rel else None
    assert saved["a.jpg"] == (folder / "a.jpg").read_bytes()
    png = cv2.imdecode(np.frombuffer(saved["d.png"], np.uint8), cv2.IMREAD_COLOR)
    assert saved["d.png"][:3] == b"\xff\xd8\xff" and png.shape == part_image.shape
    assert saved["d.png"] != cv2.imencode(".jpg", part_image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()  # q50
    assert saved["b_corrupt.jpg"] is None  # NOT_INSPECTED without a picture: the record says why
