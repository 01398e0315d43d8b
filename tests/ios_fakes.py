"""Fakes of the pymobiledevice3 services the harness uses, at the library's own API boundary.

Each fake method has the signature of the pinned pymobiledevice3 method it stands for;
``SIGNATURES`` pairs them and tests/test_ios.py fails if the installed library's
signatures drift.  Errors are raised as pymobiledevice3's own exception classes.

Behind the fakes sits :class:`FakeIPhone`: a container folder, installed apps, a
battery, and a fake benchmark app that reads its job, really runs .pte builds with the
ExecuTorch runtime (Core ML cannot run on Linux, so .mlpackage latencies are
synthetic), and writes a result by the contract.  Faults switch per test.
"""

from __future__ import annotations

import json
import plistlib
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from pymobiledevice3 import exceptions as pmd3_errors
from pymobiledevice3.lockdown import create_using_usbmux as real_create_using_usbmux
from pymobiledevice3.lockdown import LockdownClient
from pymobiledevice3.services.afc import AfcService
from pymobiledevice3.services.diagnostics import DiagnosticsService
from pymobiledevice3.services.dvt.instruments.device_info import DeviceInfo
from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl
from pymobiledevice3.services.house_arrest import HouseArrestService
from pymobiledevice3.services.installation_proxy import InstallationProxyService
from pymobiledevice3.services.mobile_image_mounter import MobileImageMounterService
from pymobiledevice3.remote.userspace_tunnel import UserspaceRsdTunnel
from pymobiledevice3.tunneld.api import TUNNELD_DEFAULT_ADDRESS, get_tunneld_device_by_udid as real_tunneld_lookup
from pymobiledevice3.usbmux import list_devices as real_list_devices

from harness.devices.ios_pmd3 import Api

BUNDLE_ID = "org.example.harness.bench"


def make_ipa(path: Path, version: str = "1.4.0", build: str = "140", bundle_id: str = BUNDLE_ID) -> Path:
    """A minimal .ipa: just the Info.plist the harness reads its version from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {"CFBundleIdentifier": bundle_id, "CFBundleShortVersionString": version, "CFBundleVersion": build}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Payload/Bench.app/Info.plist", plistlib.dumps(info))
    return path


@dataclass
class Faults:
    """App faults are True (every launch) or a launch number (that launch only)."""

    crash_app: bool | int = False  # the app dies without a result
    hang_app: bool | int = False  # the app never ends
    malformed_result: bool | int = False  # the result misses required fields
    tamper_result: Callable[[dict], dict] | None = None  # rewrites the result before the app writes it
    unplug_after_launches: int | None = None  # the cable is pulled after this many launches
    no_tunneld: bool = False  # tunneld is not running
    userspace_tunnel: bool = False  # whether a userspace tunnel can be opened (off: tests exercise tunneld)
    developer_mode_off: bool = False
    ddi_missing: bool = False
    install_fails: bool = False
    distribution_signed: bool = False  # the app lacks get-task-allow: HouseArrest refuses VendContainer


@dataclass
class FakeIPhone:
    root: Path  # the app container
    udid: str = "00008130-001A2B3C4D5E6F70"
    product_type: str = "iPhone17,2"
    ios: str = "18.5"
    faults: Faults = field(default_factory=Faults)
    apps: dict = field(default_factory=dict)  # bundle id -> Info.plist values
    installs: int = 0
    launches: int = 0
    battery_raw: int = 3050  # IOPMPowerSource Temperature: hundredths of a degree C
    plugged: bool = True
    processes: dict = field(default_factory=dict)  # pid -> (thread, stop event)
    launched_with: list = field(default_factory=list)

    def app_fault(self, name: str) -> bool:
        value = getattr(self.faults, name)
        return value is True or (value is not False and value == self.launches)

    def check(self) -> None:
        if not self.plugged:
            raise pmd3_errors.ConnectionTerminatedError()

    def container(self, path: str) -> Path:
        target = (self.root / path).resolve()
        assert str(target).startswith(str(self.root.resolve())), path  # AFC is jailed to the container
        return target


# -- usbmux and lockdown -----------------------------------------------------------------------------------
class FakeLockdown:
    def __init__(self, phone: FakeIPhone) -> None:
        self.phone = phone

    async def get_value(self, domain=None, key=None):
        self.phone.check()
        values = {"ProductType": self.phone.product_type, "ProductVersion": self.phone.ios, "DeviceName": "Lab iPhone 3",
                  "HardwareModel": "D94AP", "UniqueDeviceID": self.phone.udid, "BuildVersion": "22F76",
                  "CPUArchitecture": "arm64e"}
        return values if key is None else values.get(key)

    async def get_developer_mode_status(self) -> bool:
        self.phone.check()
        return not self.phone.faults.developer_mode_off

    async def close(self) -> None:
        return None


class _OnPhone:
    """Used with ``async with`` like the library's services; entering fails once the phone is gone."""

    phone: FakeIPhone

    async def __aenter__(self):
        self.phone.check()
        return self

    async def __aexit__(self, *exc):
        return None

    async def close(self) -> None:
        return None


class _Service(_OnPhone):
    """What every lockdown service shares: built from a lockdown client."""

    def __init__(self, lockdown, service_name=None, is_developer_service=False, service=None, include_escrow_bag=False):
        self.lockdown = lockdown
        self.phone = lockdown.phone


class FakeMobileImageMounterService(_Service):
    def __init__(self, lockdown):
        super().__init__(lockdown)

    async def is_image_mounted(self, image_type: str) -> bool:
        return not self.phone.faults.ddi_missing


class FakeInstallationProxyService(_Service):
    async def get_apps(self, application_type: str = "Any", calculate_sizes: bool = False,
                       bundle_identifiers=None, show_placeholders: bool = False):
        self.phone.check()
        return {b: dict(v) for b, v in self.phone.apps.items() if not bundle_identifiers or b in bundle_identifiers}

    async def install_from_local(self, package_path: Path, cmd: str = "Install", options=None, handler=None,
                                 developer: bool = False, *args):
        self.phone.check()
        if self.phone.faults.install_fails:
            raise pmd3_errors.AppInstallError("ApplicationVerificationFailed")
        with zipfile.ZipFile(package_path) as z:
            info = plistlib.loads(z.read("Payload/Bench.app/Info.plist"))
        self.phone.apps[info["CFBundleIdentifier"]] = info
        self.phone.installs += 1


class FakeHouseArrestService(_Service):
    def __init__(self, lockdown, documents_only: bool = False):
        super().__init__(lockdown)

    @classmethod
    async def create(cls, lockdown, bundle_id: str, documents_only: bool = False):
        lockdown.phone.check()
        if bundle_id not in lockdown.phone.apps:
            raise pmd3_errors.AppNotInstalledError()
        if lockdown.phone.faults.distribution_signed and not documents_only:
            # The library's own wording for a refusal it has no class for (services/house_arrest.py).
            raise pmd3_errors.PyMobileDevice3Exception(
                f"The device refused to open the container of {bundle_id}: InstallationLookupFailed")
        return cls(lockdown)

    async def exists(self, filename: str):
        self.phone.check()
        return self.phone.container(filename).exists()

    async def makedirs(self, filename: str):
        self.phone.check()
        self.phone.container(filename).mkdir(parents=True, exist_ok=True)

    async def set_file_contents(self, filename: str, data: bytes, progress=None) -> None:
        self.phone.check()
        target = self.phone.container(filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def rename(self, source: str, target: str) -> None:
        self.phone.check()
        dst = self.phone.container(target)
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        self.phone.container(source).rename(dst)

    async def get_file_contents(self, filename: str) -> bytes:
        self.phone.check()
        path = self.phone.container(filename)
        if not path.is_file():
            raise pmd3_errors.AfcFileNotFoundError(f"{filename} not found", 8)
        return path.read_bytes()


class FakeDiagnosticsService(_Service):
    async def get_battery(self):
        self.phone.check()
        return {"Temperature": self.phone.battery_raw, "CurrentCapacity": 87, "IsCharging": True}


# -- DVT --------------------------------------------------------------------------------------------------
class FakeDvtProvider(_OnPhone):
    def __init__(self, lockdown, strip_ssl=None, dtx=None) -> None:
        self.phone = lockdown.phone


class _DtxService(_OnPhone):
    def __init__(self, provider, service=None) -> None:
        self.phone = provider.phone


class FakeProcessControl(_DtxService):
    async def launch(self, bundle_id: str, arguments=None, kill_existing: bool = True, start_suspended: bool = False,
                     environment=None, extra_options=None) -> int:
        phone = self.phone
        phone.check()
        if bundle_id not in phone.apps:
            raise pmd3_errors.LaunchingApplicationError(f"{bundle_id} is not installed")
        phone.launches += 1
        pid = 400 + phone.launches
        phone.launched_with.append({"arguments": list(arguments or []), "environment": dict(environment or {})})
        stop = threading.Event()
        thread = threading.Thread(target=fake_app, args=(phone, dict(environment or {}), stop), daemon=True)
        phone.processes[pid] = (thread, stop)
        thread.start()
        if phone.faults.unplug_after_launches is not None and phone.launches >= phone.faults.unplug_after_launches:
            thread.join(60)
            phone.plugged = False
        return pid

    async def kill(self, pid: int):
        self.phone.check()
        thread, stop = self.phone.processes[pid]
        stop.set()
        thread.join(5)


class FakeDeviceInfo(_DtxService):
    async def is_running_pid(self, pid: int) -> bool:
        self.phone.check()
        return self.phone.processes[pid][0].is_alive()


class FakeUserspaceRsdTunnel:
    phone: FakeIPhone  # set by build_api

    def __init__(self, serial=None, autopair=True, remotepairing_fallback=True) -> None:
        self.serial = serial
        self.closed = False

    async def aopen(self):
        self.phone.check()
        if not self.phone.faults.userspace_tunnel:
            raise pmd3_errors.UserspaceTunnelUnavailableError("CoreDeviceProxy is not available on this device")
        return FakeLockdown(self.phone)

    async def aclose(self) -> None:
        self.closed = True


# -- discovery --------------------------------------------------------------------------------------------
def build_api(phone: FakeIPhone) -> Api:
    async def list_devices(usbmux_address=None):
        return [SimpleNamespace(devid=1, serial=phone.udid, connection_type="USB")] if phone.plugged else []

    async def create_using_usbmux(serial=None, identifier=None, label="pymobiledevice3", autopair=True,
                                  connection_type=None, pair_timeout=None, local_hostname=None, pair_record=None,
                                  pairing_records_cache_folder=None, port=62078, usbmux_address=None):
        if not phone.plugged or serial not in (None, phone.udid):
            raise pmd3_errors.DeviceNotFoundError(serial)
        return FakeLockdown(phone)

    async def get_tunneld_device_by_udid(udid, tunneld_address=TUNNELD_DEFAULT_ADDRESS, bridge=None):
        if phone.faults.no_tunneld:
            raise pmd3_errors.TunneldConnectionError()
        return FakeLockdown(phone) if udid == phone.udid and phone.plugged else None

    userspace = type("UserspaceRsdTunnel", (FakeUserspaceRsdTunnel,), {"phone": phone})
    return Api(list_devices=list_devices, create_using_usbmux=create_using_usbmux,
               get_tunneld_device_by_udid=get_tunneld_device_by_udid, UserspaceRsdTunnel=userspace,
               MobileImageMounterService=FakeMobileImageMounterService,
               InstallationProxyService=FakeInstallationProxyService, HouseArrestService=FakeHouseArrestService,
               DvtProvider=FakeDvtProvider, ProcessControl=FakeProcessControl, DeviceInfo=FakeDeviceInfo,
               DiagnosticsService=FakeDiagnosticsService)


# Each fake class, the library class it stands for, and the methods the harness calls on it.
FAKED_METHODS = [
    (FakeLockdown, LockdownClient, ("get_value", "get_developer_mode_status")),
    (FakeMobileImageMounterService, MobileImageMounterService, ("__init__", "is_image_mounted")),
    (FakeInstallationProxyService, InstallationProxyService, ("__init__", "get_apps", "install_from_local")),
    (FakeHouseArrestService, HouseArrestService, ("__init__", "create")),
    (FakeHouseArrestService, AfcService, ("exists", "makedirs", "set_file_contents", "rename", "get_file_contents")),
    (FakeDiagnosticsService, DiagnosticsService, ("__init__", "get_battery")),
    (FakeDvtProvider, DvtProvider, ("__init__",)),
    (FakeProcessControl, ProcessControl, ("__init__", "launch", "kill")),
    (FakeDeviceInfo, DeviceInfo, ("__init__", "is_running_pid")),
    (FakeUserspaceRsdTunnel, UserspaceRsdTunnel, ("__init__", "aopen", "aclose")),
]


def signature_pairs(api: Api) -> list[tuple[str, object, object]]:
    """(name, fake, real) for every library function and method the harness calls."""
    pairs = [("usbmux.list_devices", api.list_devices, real_list_devices),
             ("lockdown.create_using_usbmux", api.create_using_usbmux, real_create_using_usbmux),
             ("tunneld.get_tunneld_device_by_udid", api.get_tunneld_device_by_udid, real_tunneld_lookup)]
    for fake, real, methods in FAKED_METHODS:
        pairs += [(f"{real.__name__}.{m}", getattr(fake, m), getattr(real, m)) for m in methods]
    return pairs


# -- the benchmark app --------------------------------------------------------------------------------------
def fake_app(phone: FakeIPhone, environment: dict, stop: threading.Event) -> None:
    """Read the job named by HARNESS_JOB, do it, write the result (or misbehave as the faults say)."""
    if phone.app_fault("crash_app"):
        return
    if phone.app_fault("hang_app"):
        stop.wait()
        return
    job = json.loads(phone.container(environment["HARNESS_JOB"]).read_text())
    started = time.monotonic()
    result = {"schema": "harness.ios-result/1", "job_id": job["job_id"], "status": "ok",
              "app": {"bundle_id": BUNDLE_ID, "version": "1.4.0", "build": "140"},
              "device": {"product_type": phone.product_type, "os_version": phone.ios},
              "compute_units": job["compute_units"], "compile_ms": None, "peak_memory_mb": 120.5}
    if job["task"] == "latency":
        model = job["models"][0]
        path = phone.container(model["path"])
        if model["format"] == "pte":
            from harness.runners.host_worker import measure

            r = measure("pte", str(path), None, job["warmup_iterations"], job["iterations"], None, 0)
            result.update(load_ms=r["load_ms"], warmup_ms=r["warmup_ms"], latency_ms=r["samples_ms"])
        else:  # Core ML cannot run here: a synthetic latency that grows with the model's size
            size_mb = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
            result.update(compile_ms=40 * size_mb, load_ms=5 * size_mb, warmup_ms=[2 * size_mb] * job["warmup_iterations"],
                          latency_ms=[size_mb * (1 + 0.01 * (i % 5)) for i in range(job["iterations"])])
    else:
        import numpy as np
        import whisper

        from harness.accuracy.chains import bundle_chain
        from harness.accuracy.decode import greedy_decode
        from harness.models.whisper_facts import decoding_config

        roles = {m["role"]: phone.container(m["path"]) for m in job["models"]}
        t0 = time.perf_counter()
        chain = bundle_chain(roles["model"], roles["processor"])
        cfg, tokenizer = decoding_config(), whisper.tokenizer.get_tokenizer(multilingual=False)
        result.update(load_ms=(time.perf_counter() - t0) * 1000, transcripts=[], latency_ms=[])
        for item in job["audio"]:
            audio = np.fromfile(phone.container(item["path"]), dtype="<f4")
            out = greedy_decode(chain, audio, cfg["suppress_ids"], cfg["suppress_ids_begin"], 224)
            result["transcripts"].append({"id": item["id"], "text": tokenizer.decode(out.tokens), "latency_ms": out.total_ms,
                                          "tokens": len(out.tokens), "encoder_ms": out.encoder_ms})
            result["latency_ms"].append(out.total_ms)
    elapsed = time.monotonic() - started
    result["thermal_state"] = [{"t_s": 0.0, "state": "nominal"},
                               {"t_s": round(elapsed, 3), "state": "fair" if phone.battery_raw >= 4000 else "nominal"}]
    if phone.app_fault("malformed_result"):
        del result["latency_ms"]
        result["load_ms"] = "fast"
    if phone.faults.tamper_result is not None:
        result = phone.faults.tamper_result(result)
    target = phone.container(job["result_path"])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(result))
    partial.rename(target)
