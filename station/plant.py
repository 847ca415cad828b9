"""A station's report of itself for the plant view (issue 30): its outbox backlog, run and model, written into
``station_status`` every few seconds on a thread of its own. While the server is away nothing lands (the outbox
keeps the parts, not these reports): the plant view shows how old each station's last report is."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

REPORT_S = 5.0  # how often a running station reports its backlog


class StatusReporter:
    """Writes ``station``'s backlog (``backlog()``), run and model (``model()``) every ``every_s`` seconds."""

    def __init__(self, sessions, station: str, run_id: int, backlog: Callable[[], int], model: Callable[[], str],
                 every_s: float = REPORT_S) -> None:
        self.sessions, self.station, self.run_id = sessions, station, run_id
        self.backlog, self.model, self.every_s = backlog, model, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inspector-station-status", daemon=True)
        self._failing = False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def report(self, state: str = "running") -> bool:
        """One report now; False when it could not be written (logged once per outage)."""
        from db.repositories.stations import StationRepo
        from db.writes import write

        backlog, model = self.backlog(), self.model()
        try:
            write(self.sessions, lambda s: StationRepo.report(s, self.station, backlog, self.run_id, model, state),
                  "Reporting the station's backlog")
        except Exception as e:  # noqa: BLE001 - the line goes on; the plant view shows the report's age
            if not self._failing:
                log.info("the plant view's report of %s could not be written (tried again every %.0f s): %s",
                         self.station, self.every_s, e)
            self._failing = True
            return False
        self._failing = False
        return True

    def _run(self) -> None:
        self.report()
        while not self._stop.wait(self.every_s):
            self.report()
