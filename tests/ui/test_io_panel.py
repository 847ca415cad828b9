"""The line's I/O panel and the red banner, on the real window over a real station and a real broker."""

from __future__ import annotations

import socket

import pytest

from tests.test_line_mqtt import MOSQUITTO, Broker, Plc
from tests.ui.conftest import SAMPLES, run_until_idle

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="Debian's mosquitto is not installed")


def line_spec(make_spec, port: int, trigger: str = "mqtt"):
    from inspector.core.config import config_from_dict

    spec = make_spec(SAMPLES, None, loop=True)
    data = spec.config.model_dump(mode="python")
    data["station"] = {"name": "t"}
    data["line"] = {"trigger": trigger, "trigger_timeout_s": 1.0,
                    "mqtt": {"url": f"mqtt://127.0.0.1:{port}", "keepalive_s": 5}}
    return spec.__class__(spec.source, spec.db_url, config_from_dict(data), loop=True)


def test_the_panel_shows_the_link_and_the_banner_turns_red_while_the_broker_is_away(qtbot, open_window, make_spec,
                                                                                    tmp_path):
    broker = Broker(tmp_path)
    broker.start()
    plc = Plc(broker.port)
    try:
        w = open_window(line_spec(make_spec, broker.port))
        assert w.live.io.isHidden()
        w.start()
        qtbot.waitUntil(lambda: w.live.io.value("ready") == "ready", timeout=60_000)
        assert w.live.io.value("links") == f"mqtt 127.0.0.1:{broker.port}: connected"
        assert w.live.link_banner.message == ""
        plc.trigger("W1")
        qtbot.waitUntil(lambda: w.live.io.value("last_result").startswith("W1 · "), timeout=20_000)
        assert w.live.io.value("last_trigger").startswith("W1 · ") and w.live.io.value("missed") == "0"
        broker.stop()
        qtbot.waitUntil(lambda: "PLC LINK DOWN" in w.live.link_banner.message, timeout=20_000)
        assert "reconnecting" in w.live.io.value("links")
        broker.start()
        qtbot.waitUntil(lambda: w.live.link_banner.message == "", timeout=45_000)
        w.controller.stop()
        run_until_idle(qtbot, w)
        assert w.live.link_banner.message == ""
    finally:
        plc.close()
        broker.stop()


def test_a_station_without_a_line_shows_no_panel(qtbot, open_window, make_spec):
    w = open_window(make_spec(SAMPLES, None))
    w.start()
    run_until_idle(qtbot, w)
    assert w.live.io.isHidden() and w.live.link_banner.message == ""


def test_a_closed_port_is_a_link_down_from_the_start(qtbot, open_window, make_spec):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    w = open_window(line_spec(make_spec, port, trigger="none"))
    w.start()
    qtbot.waitUntil(lambda: "PLC LINK DOWN" in w.live.link_banner.message, timeout=60_000)
    assert f"mqtt 127.0.0.1:{port}" in w.live.link_banner.message
    w.controller.stop()
    run_until_idle(qtbot, w)
