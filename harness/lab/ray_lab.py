"""Measure a plan's runs on a Ray lab: each device's runs on the controller node that holds the device.

The driver (where ``harness run --lab`` was typed, and where the store lives) submits one
task per device, pinned by the device's custom resource to the node it is plugged into.
On that node the task runs the same :class:`~harness.run.workers.DeviceWorker` a single
controller uses, and streams its events back as a Ray generator; the driver turns them
into the same event stream :func:`harness.run.workers.measure_concurrently` yields, so the
engine's one writer stores them the same way.

Faults: a node that dies takes its tasks with it.  Its device's run in flight and the runs
it had not started come back as ``lost``, with the reason, and ``--resume`` measures them
(on whichever node then advertises the device).  Tasks are never retried by Ray: a retry
would measure runs twice and hide the fault.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from typing import Iterator

from harness.errors import UserError
from harness.extras import install_command
from harness.lab import device_resource
from harness.lab.files import FileServer, catalogue, localize
from harness.plan import CellSpec
from harness.run.cell import CellResult
from harness.run.workers import DeviceWorker, Event, unreachable_result

GONE_GRACE_S = 10.0  # a device's resource missing from the cluster this long: its node has left
RELAY_ENDED = object()  # put by a device's relay when it has passed on its last event


def _node_worker(device_id: str, work: list[tuple[CellSpec, int]], files, server, node_inventory: str | None):
    """Runs on the device's node: localize the cells' files, then measure as a single controller would."""
    import os

    import ray

    from harness.lab.node import INVENTORY_ENV, node_config

    read = lambda path, offset: ray.get(server.read.remote(path, offset))  # noqa: E731
    inventory = node_inventory or os.environ.get(INVENTORY_ENV)
    localized = {}
    for spec, run_index in work:
        if spec.key not in localized:
            localized[spec.key] = node_config(localize(spec, files, read), inventory)
    work = [(localized[spec.key], run_index) for spec, run_index in work]
    node = f"{socket.gethostname()} (ray node {ray.get_runtime_context().get_node_id()[:8]})"
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    worker = DeviceWorker(device_id, work, events, stop)
    worker.start()
    try:
        while True:
            event = events.get()
            if event.kind == "device":
                facts, config = event.payload
                facts.facts["controller"] = node
            yield event
            if event.kind == "done":
                return
    finally:  # cancelled by the driver (Ctrl-C): stop, and kill what the device runs
        stop.set()
        worker.join(timeout=0.5)
        if worker.is_alive() and worker.device is not None:
            worker.device.close()


def connect(address: str) -> None:
    """Join the lab at ``address``: the head's HOST:PORT (or ``auto`` on a node of the lab).  The driver runs on
    a node of the lab, normally the head, where the database is: it serves the run's files from there."""
    try:
        import ray
    except ImportError:
        raise UserError("--lab needs Ray, which this install lacks.",
                        fix=f"{install_command('lab')} on every controller host (same versions everywhere).") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=False, include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise UserError(f"cannot join the lab at {address}: {str(exc).splitlines()[0]}",
                        fix="start the head with 'harness lab join --head' (or 'ray start --head') and pass its "
                            "address, e.g. --lab 10.0.0.5:6379.") from None


def advertised_devices() -> set[str]:
    """Device ids some live node of the lab advertises."""
    import ray

    from harness.lab import RESOURCE_PREFIX

    return {name[len(RESOURCE_PREFIX):] for name in ray.cluster_resources() if name.startswith(RESOURCE_PREFIX)}


def measure_on_lab(todo: list[tuple[CellSpec, int]], address: str,
                   node_inventory: str | None = None) -> Iterator[Event]:
    """Yield the same events as :func:`harness.run.workers.measure_concurrently`, measured on the lab's nodes.

    A device no node advertises fails its runs at once, naming the fix.  Closing the generator early
    cancels every device's task.
    """
    import ray

    connect(address)
    by_device: dict[str, list[tuple[CellSpec, int]]] = {}
    for spec, run_index in todo:
        by_device.setdefault(spec.device.id, []).append((spec, run_index))
    present = advertised_devices()
    events: queue.Queue = queue.Queue()
    remote = ray.remote(num_cpus=0, max_retries=0)(_node_worker)
    serve = ray.remote(num_cpus=0, max_restarts=0)(FileServer)
    here = ray.get_runtime_context().get_node_id()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    files = catalogue(list({spec.key: spec for spec, _ in todo}.values()))
    server = serve.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(files)
    tasks, threads = [], []
    for device_id, work in by_device.items():
        if device_id not in present:
            why = (f"no controller node of the lab advertises {device_id}; on the host it is plugged into, run "
                   f"'harness lab join HEAD:PORT --inventory devices.yaml'")
            for spec, run_index in work:
                events.put(Event("finished", device_id, spec, run_index, unreachable_result(spec, why, lost=False)))
            continue
        gen = remote.options(resources={device_resource(device_id): 1}, name=f"measure {device_id}").remote(
            device_id, work, files, server, node_inventory)
        tasks.append(gen)
        thread = threading.Thread(target=_relay, args=(device_id, gen, work, events), daemon=True,
                                  name=f"lab-{device_id}")
        thread.start()
        threads.append(thread)
    try:
        yield from drain(events, relays=len(threads))
    finally:
        for gen in tasks:
            try:
                ray.cancel(gen, force=False)
            except Exception:  # noqa: BLE001 - finished or already gone
                pass


def drain(events: queue.Queue, relays: int) -> Iterator[Event]:
    """The events in ``events`` until each of ``relays`` relays has put RELAY_ENDED (was: until every relay thread
    had exited, looked at every 0.5 s, so each night waited up to half a second after its last event)."""
    while relays or not events.empty():
        try:
            event = events.get(timeout=0.5)  # not forever: Ctrl-C still stops the driver
        except queue.Empty:
            continue
        if event is RELAY_ENDED:
            relays -= 1
        else:
            yield event


def _relay(device_id: str, gen, work: list[tuple[CellSpec, int]], events: queue.Queue) -> None:
    """Move one device's events from its Ray generator to the driver's queue, then RELAY_ENDED; when its node
    dies, store what it had not finished as lost (with why), so --resume measures it."""
    try:
        _pass_on(device_id, gen, work, events)
    finally:
        events.put(RELAY_ENDED)


def _pass_on(device_id: str, gen, work: list[tuple[CellSpec, int]], events: queue.Queue) -> None:
    import ray

    finished, failed = set(), set()
    gone_since = None
    try:
        while True:
            ready, _ = ray.wait([gen], timeout=1.0)
            if not ready:
                # Not started, or between events: a node that left without telling (pulled cable) leaves
                # the task pending forever, so watch for the device's resource to disappear.
                if device_id in advertised_devices():
                    gone_since = None
                elif gone_since is None:
                    gone_since = time.monotonic()
                elif time.monotonic() - gone_since > GONE_GRACE_S:
                    raise ConnectionError(f"no node advertises {device_id} any more (its controller left the lab)")
                continue
            try:
                event = ray.get(next(gen))
            except StopIteration:
                return
            if event.kind == "finished":
                finished.add((event.spec.key, event.run_index))
                if event.result.status != "ok":
                    failed.add(event.spec.key)
            if event.kind != "done":
                events.put(event)
    except Exception as exc:  # noqa: BLE001 - a dead node, a crashed worker: the run goes on without them
        # The task's own code raising (a build that cannot be fetched, say) fails its runs; a node or worker
        # that died loses them, for --resume.
        lost = not isinstance(exc, ray.exceptions.RayTaskError)
        first = str(exc).strip().splitlines()[-1 if not lost else 0][:300]
        why = (f"controller node lost mid-run: {type(exc).__name__}: {first}" if lost
               else f"the lab could not measure on this device's node: {first}")
        for spec, run_index in work:
            if (spec.key, run_index) not in finished and spec.key not in failed:
                result: CellResult = unreachable_result(spec, why, lost=lost)
                events.put(Event("finished", device_id, spec, run_index, result))
        try:
            ray.cancel(gen, force=True)
        except Exception:  # noqa: BLE001
            pass
