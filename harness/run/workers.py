"""Every device measured at once: one worker thread per device, one writer.

A worker opens its device, checks it answers and prepares it, then measures its own runs
in schedule order, each with the device's own cooldown gate and thermal sampler (both live
in :func:`harness.run.cell.execute_run`).  A device that hangs, drops off or overheats
delays only its own worker.  Workers never touch the results store: they put events on a
queue, and the calling thread — the only one holding the SQLite connection — records
them as they arrive, so each finished run is committed at once, as before.  The host is
one device, so it never measures two cells at once on the same CPU.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from harness.clock import utc_now
from harness.devices import open_device
from harness.devices.base import TAKEN_OVER
from harness.errors import DeviceError, UserError
from harness.plan import CellSpec
from harness.run.cell import CellResult, execute_run

STOP_WAIT_S = 10.0  # how long a stopped run waits for its workers to see their commands killed


@dataclass
class Event:
    kind: str  # "device" (facts of a device now open) | "started" | "finished" | "done" (a worker ended)
    device_id: str
    spec: CellSpec | None = None
    run_index: int = 0
    result: CellResult | None = None
    payload: Any = None  # "device": (facts, config dict)


def lib_folders_used(config) -> set[str]:
    """The library folders (under the phone's push folder) a device's cells use, by its tools and SoC: kept
    by make_room like the plan's builds."""
    from harness.runners.onnxruntime_perf_test import used_ort_lib_folder
    from harness.runners.qnn_executor_runner import HTP_VERSION, qnn_lib_folder

    tools, soc = getattr(config, "tools", None), (getattr(config, "soc", None) or "").upper()
    if tools is None:
        return set()
    used = {used_ort_lib_folder(tools), qnn_lib_folder(soc) if soc in HTP_VERSION else None}
    return {name for name in used if name}


def unreachable_result(spec: CellSpec, why: str, lost: bool, busy: bool = False) -> CellResult:
    """A run that could not start: "lost" when the device answered earlier in this run and then went away, or is
    simply not there now (off, rebooting: for --resume), "failed" when something needs fixing first (its reason
    names what).  ``busy``: the device answered, and another controller holds it ("phone busy: held by ...")."""
    now = utc_now()
    return CellResult(key=spec.key, status="lost" if lost else "failed",
                      reason=f"{BUSY if busy else UNREACHABLE}: {why}", started_at=now, finished_at=now)


BUSY, UNREACHABLE = "phone busy", "device unreachable"  # how unreachable_result's reasons begin


def lost_by_cause(cells) -> dict[str, int]:
    """A run's lost cells counted by what happened to their device: "busy" (another controller held it each time
    it was asked, or took it over mid-run), "never answered" (none of its cells got past opening it: a wrong
    serial, adb, a phone off) or "mid-run" (it answered, then went away).  ``cells``: the run's stored cells (device_id, status, reason), whose
    reasons begin with "run N of M: " when a cell has several runs."""
    from harness.store.db import reason_of_run

    by_device: dict[str, list] = {}
    for cell in cells:
        by_device.setdefault(cell.device_id, []).append(cell)
    counts: dict[str, int] = {}
    for device_cells in by_device.values():
        lost = [cell for cell in device_cells if cell.status == "lost"]
        if not lost:
            continue
        # A takeover met while the phone was being opened again reads "device unreachable: another controller ...".
        if all(reason_of_run(cell.reason).removeprefix(f"{UNREACHABLE}: ").startswith((f"{BUSY}:", TAKEN_OVER))
               for cell in lost):
            cause = "busy"
        elif all(cell.status == "lost" and reason_of_run(cell.reason).startswith(f"{UNREACHABLE}:")
                 for cell in device_cells):
            cause = "never answered"
        else:
            cause = "mid-run"
        counts[cause] = counts.get(cause, 0) + len(lost)
    return counts


class DeviceWorker(threading.Thread):
    """Measures one device's runs in order; a failed run ends its cell (the rest of that cell is skipped)."""

    def __init__(self, device_id: str, work: list[tuple[CellSpec, int]], events: queue.Queue, stop: threading.Event,
                 opener: Callable = open_device) -> None:
        super().__init__(name=f"device-{device_id}", daemon=True)
        self.device_id, self.work, self.events, self.stop, self.opener = device_id, work, events, stop, opener
        self.device = None
        self.was_open = False  # whether the device answered at some point of this run (then its loss is "lost")
        self.busy = False  # whether the device answered but another controller holds it
        self.stayed_away = False  # the last device closed waited for its phone to come back, and it did not
        self.position = 0  # the next item of ``work``; what is left when a bug stops the worker

    def run(self) -> None:
        try:
            self._measure()
        except Exception:  # noqa: BLE001 - a bug must not silently drop this device's cells
            import traceback

            why = f"harness error on this device's worker: {traceback.format_exc(limit=8)}"
            for spec, run_index in self.work[self.position:]:
                now = utc_now()
                self.events.put(Event("finished", self.device_id, spec, run_index, CellResult(
                    key=spec.key, status="failed", reason=why.splitlines()[-1], log=why, started_at=now,
                    finished_at=now)))
        finally:
            if self.device is not None:
                self.device.close()
            self.events.put(Event("done", self.device_id))

    def _needed_builds(self) -> set[str]:
        """The sha256 of every build this device's runs measure (a chain's every part)."""
        return {art.sha256 for spec, _ in self.work
                for art in (spec.artifact, *(spec.chain.parts.values() if spec.chain else ()))}

    def _open(self, config) -> str | None:
        """Open the device; None when ready, else why it is not.  A device that answered earlier in this run and
        is lost again while being reopened (adbd restarting: adb still lists the phone for a moment, and every
        command on it ends at once) is opened again until its offline grace has passed, as one adb lists offline
        is waited for."""
        give_up_at = None
        while True:
            why, lost, grace_s = self._open_once(config)
            if why is None or not (lost and self.was_open and not self.stayed_away):
                return why
            give_up_at = give_up_at or time.monotonic() + grace_s
            if time.monotonic() >= give_up_at or self.stop.wait(0.5):
                return why

    def _open_once(self, config) -> tuple[str | None, bool, float]:
        """One try at opening the device: (None or why not, whether it went away while being asked, how long one
        that went away is waited for)."""
        try:
            device = self.opener(config)
        except UserError as exc:
            return str(exc), False, 0.0
        grace_s = getattr(device, "offline_grace_s", 0.0)
        if hasattr(device, "run_stop"):  # a phone's waits (one adb lists offline) end when the run is stopped
            device.run_stop = self.stop
            # One that answered earlier in this run and dropped is waited for as at the start, unless closing it
            # after its lost cell already waited that long.
            device.answered_before = self.was_open and not self.stayed_away
        try:
            ok, why = device.reachable()
            if ok:
                ok, why = device.prepare()
            if ok:
                device.make_room(self._needed_builds() | lib_folders_used(device.config))
                facts = device.facts()
        except DeviceError as exc:  # it answered, then went away while being asked
            ok, why, went_away = False, exc.reason, exc.lost
            self.was_open = self.was_open or exc.lost
        else:
            went_away = False
        if not ok:
            self.was_open = self.was_open or getattr(device, "absent", False)  # a phone off at the start of the night comes back too
            self.busy = getattr(device, "busy", False)
            device.close()
            return why, went_away, grace_s
        self.device = device
        self.was_open = True
        self.events.put(Event("device", self.device_id, payload=(facts, config.model_dump(mode="json"))))
        return None, False, grace_s

    def _measure(self) -> None:
        failed: set[str] = set()
        unreachable = None
        for self.position, (spec, run_index) in enumerate(self.work):
            if self.stop.is_set():
                return
            if spec.key in failed:
                continue  # a run that failed ends its cell: a model that hangs would hang every run
            if self.device is None and unreachable is None:
                unreachable = self._open(spec.device)
            if self.stop.is_set():
                return  # stopped while the device was being opened (a stop may not have seen it yet)
            self.events.put(Event("started", self.device_id, spec, run_index))
            if unreachable is not None:
                result = unreachable_result(spec, unreachable, lost=self.was_open, busy=self.busy)
            else:
                result = execute_run(spec, self.device, run_index)
            if result.status != "ok":
                failed.add(spec.key)
            if result.status == "lost" and self.device is not None:
                # Ask again before the next cell: a phone that is back within the offline grace is measured on; one
                # that is gone fails the rest at once (as lost, for --resume), instead of each cell waiting out its
                # own timeouts.
                self.device.close()
                self.stayed_away = getattr(self.device, "stayed_away", False)
                self.device = None
            self.events.put(Event("finished", self.device_id, spec, run_index, result))


def measure_concurrently(todo: list[tuple[CellSpec, int]], opener: Callable = open_device) -> Iterator[Event]:
    """Start one worker per device over ``todo`` (kept in order within each device) and yield their events
    until every worker is done.  Closing the generator early (Ctrl-C) tells the workers to stop."""
    by_device: dict[str, list[tuple[CellSpec, int]]] = {}
    for spec, run_index in todo:
        by_device.setdefault(spec.device.id, []).append((spec, run_index))
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    workers = [DeviceWorker(device_id, work, events, stop, opener) for device_id, work in by_device.items()]
    for worker in workers:
        worker.start()
    running = len(workers)
    try:
        while running:
            try:
                event = events.get(timeout=0.5)  # a timeout, so that Ctrl-C reaches this thread promptly
            except queue.Empty:
                continue
            if event.kind == "done":
                running -= 1
            yield event
    finally:
        stop.set()
        for worker in workers:
            if worker.is_alive() and worker.device is not None:
                worker.device.close()  # interrupted mid-run: kill what it runs now, start nothing more
        deadline = time.monotonic() + STOP_WAIT_S
        for worker in workers:  # each ends once its killed command returns; a hung one is a daemon thread
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
