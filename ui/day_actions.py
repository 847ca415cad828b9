"""The window's part of the plant's day: product switch, lot and work order, alarm acknowledgement and the
product editor's save, each checked and recorded below the window (``station.Station``, the product guard),
with a sign-in asked for when one is refused for want of a user. A mixin of ``MainWindow``: it uses the
window's selection (``spec``), live tab, controller and status bar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from inspector.core.auth import Actor
from inspector.core.config import Config, RecipeConfig, save_config
from inspector.core.day import DayContext, Shifts, product_config, with_product
from inspector.core.errors import ConfigError, PermissionDenied
from ui.controller import RunInfo
from ui.product_editor import ProductEditor
from ui.workers import operator_message, run_job


class DayActions:
    """Mixed into ``MainWindow``."""

    def _show_day_choices(self) -> None:
        cfg = self.spec.config
        self.live.day.set_products(sorted(cfg.products), Shifts(cfg.shifts))
        self.live.day.show_day(DayContext(self.spec.product or "", self.spec.lot, self.spec.work_order))

    def _as_user(self, act: Callable[[Actor, Callable[[str], None]], object],
                 refused: Callable[[str], None] | None = None) -> None:
        """Do ``act`` as the user acting now; when refused for want of a user, ask for a sign-in and try once
        more (a fresh install needs none). A second refusal goes to ``refused`` (default: the live screen)."""
        def on_live(why: str) -> None:
            self.live.error.show_error(why)
            self.live.day.select_product(self.spec.product or "")

        refused = refused or on_live

        act(self.actor(), lambda why: self.with_user(lambda: act(self.actor(), refused), why))

    def choose_product(self, name: str) -> None:
        """The product on the line: a running station switches between two parts (checked, audited); otherwise
        the next start uses it."""
        if self.controller.state in ("running", "paused"):
            self._as_user(lambda actor, denied: self.controller.switch_product(name, actor, self.spec.config,
                                                                                denied))
        else:
            self.spec = replace(self.spec, product=name or None)
            self.live.day.select_product(name)
            self._show_selection()

    def enter_lot(self, lot: str, work_order: str) -> None:
        try:
            DayContext(lot=lot, work_order=work_order)
        except ValueError as e:
            self.live.error.show_error(str(e))
            return
        if self.controller.state in ("running", "paused"):
            self._as_user(lambda actor, denied: self.controller.set_lot(lot, work_order, actor, denied))
        else:
            self.spec = replace(self.spec, lot=lot, work_order=work_order)
            self.statusBar().showMessage(f"Lot {lot or '-'}, work order {work_order or '-'} from the next start",
                                         10000)

    def acknowledge_alarm(self, alarm_id: int) -> None:
        self._as_user(lambda actor, denied: self.controller.acknowledge_alarm(alarm_id, actor, denied))

    def _run_started(self, info: RunInfo) -> None:
        self.classes = info.classes
        if info.day is not None:
            self._day_changed(info.day)

    def _day_changed(self, day: DayContext) -> None:
        """What the station now stamps on each part: kept for the next start, the product's region shown."""
        self.spec = replace(self.spec, product=day.product or None, lot=day.lot, work_order=day.work_order)
        recipe = product_config(self.spec.config, day.product).recipe
        self.live.roi = recipe.roi
        self.live.canvas.set_roi(recipe.roi)
        self.live.health.set_value("mode", f"{self.spec.config.run.mode.value} · recipe {recipe.name}")
        self._show_selection()
        self.statusBar().showMessage(f"Product {day.product or '(none)'} · recipe {recipe.name} · lot "
                                     f"{day.lot or '-'} · work order {day.work_order or '-'}", 10000)

    def edit_product(self) -> ProductEditor | None:
        name = self.live.day.chosen_product()
        product = self.spec.config.products.get(name)
        if product is None:
            return None
        if self.product_editor is not None:
            self.product_editor.close()
        classes = (*self.classes, *product.classes)
        self.product_editor = ProductEditor(name, product.recipe, classes, self.live.last, self)
        self.product_editor.saved.connect(lambda recipe: self._save_product(name, recipe))
        self.product_editor.show()
        return self.product_editor

    def _save_product(self, name: str, recipe: RecipeConfig) -> None:
        """Checked (QC sign-in), registered and audited by the guard, written to the settings file, and switched
        to at once when the line runs this product."""
        old = self.spec.config.products[name].recipe
        try:
            cfg = with_product(self.spec.config, name, recipe)
        except ConfigError as e:
            if self.product_editor is not None:
                self.product_editor.problem.setText(str(e))
            return

        def save(actor: Actor, denied: Callable[[str], None]) -> None:
            def job() -> str:
                def write() -> None:
                    save_config(cfg, self.settings_path)

                if self.product_guard is None:
                    write()
                    return actor.name
                return self.product_guard(name, old, recipe, actor, write)  # audited only when the write succeeded

            def failed(e: BaseException) -> None:
                if isinstance(e, PermissionDenied):
                    denied(operator_message(e))
                elif self.product_editor is not None:
                    self.product_editor.problem.setText(operator_message(e))

            run_job(self.controller.pool, job, lambda who: self._product_saved(name, cfg, who), failed,
                    "saving the product")

        self._as_user(save, self._product_refused)

    def _product_refused(self, why: str) -> None:
        """A refused Save is said on the product editor, where the person is looking (issue 26: it went to the
        live screen, behind the editor): in its problem line and a message box parented to it."""
        editor = self.product_editor
        if editor is None or not editor.isVisible():
            self.live.error.show_error(why)
            return
        editor.problem.setText(why)
        box = QMessageBox(QMessageBox.Icon.Warning, "Product not saved", why, QMessageBox.StandardButton.Ok, editor)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        editor.refusal = box
        box.open()

    def _product_saved(self, name: str, cfg: Config, who: str) -> None:
        self.spec = replace(self.spec, config=cfg)
        if self.product_editor is not None:
            self.product_editor.accept()
        self.statusBar().showMessage(f"Product {name} saved by {who} to {self.settings_path}", 10000)
        if self.controller.state in ("running", "paused") and self.spec.product == name:
            self._as_user(lambda actor, denied: self.controller.switch_product(name, actor, cfg, denied))
