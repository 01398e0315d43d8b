"""iPhones over pymobiledevice3, without Xcode at run time.

Measurements happen inside the on-device benchmark app (a signed .ipa the user supplies):
the harness installs it when its version differs, pushes builds and audio into its
container (HouseArrest, content-addressed like on Android), launches it through DVT
ProcessControl with a job file, polls until it ends (ProcessControl has no wait), kills
it on timeout, and pulls its result file.  Every library call is in ``ios_pmd3``.

Before a run, :meth:`Device.reachable` checks what a run needs and names what is missing:
the phone on usbmux, pairing, Developer Mode, a mounted developer disk image, and from
iOS 17 a tunnel for the developer services (tunneld's, or a userspace one opened here).
"""

from __future__ import annotations

import plistlib
import time
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from harness.devices.base import BaseDevice, CommandResult, DeviceConfig, DeviceFacts, ThermalSample
from harness.devices.ios_pmd3 import TUNNEL_MIN_IOS, Session
from harness.errors import DeviceError
from harness.validation import PeriodSeconds
from harness.vocab import Backend
from harness.yamlconf import LocalPath

CONTAINER_ROOT = "Documents/harness"
FACT_KEYS = {"product_type": "ProductType", "ios": "ProductVersion", "name": "DeviceName",
             "hardware_model": "HardwareModel", "udid": "UniqueDeviceID", "build": "BuildVersion", "cpu": "CPUArchitecture"}
# IOPMPowerSource's Temperature has no documented unit; on the phones it has been read from it is
# hundredths of a degree Celsius (3050 = 30.5 C).  The raw value is stored beside the conversion.
BATTERY_TEMP_DIVISOR = 100.0


class Config(DeviceConfig):
    """An iPhone entry: its UDID, the benchmark app to install, and how to reach developer services."""

    udid: str = Field(min_length=1, description="The iPhone's UDID (from Finder or `idevice_id -l`).")
    app: LocalPath = Field(description="The signed .ipa of the on-device benchmark app (a local file).")
    bundle_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9.-]+$", description="The benchmark app's bundle "
                                                                                  "identifier.")
    # iOS 17+: developer services go through a tunnel: tunneld's, or a userspace one the harness opens
    # itself (no root, iOS 17.4+, one per host process).  auto tries tunneld first.
    tunnel: Literal["auto", "tunneld", "userspace"] = Field("auto", description="How to reach developer "
                                                                               "services (iOS 17+): tunneld's "
                                                                               "tunnel, a userspace one, or auto "
                                                                               "(tunneld first).")
    tunneld: str = Field(default="127.0.0.1:49151", pattern=r"^[^:]+:\d+$",
                         description="The host:port tunneld listens on.")
    compute_units: Literal["cpuOnly", "cpuAndGPU", "cpuAndNeuralEngine", "all"] = Field(
        "all", description="The Core ML compute units the app may use.")
    backends: list[Backend] = Field(["coreml"], description="The runtimes this iPhone can run builds with.")
    poll_s: PeriodSeconds = Field(0.5, description="How often to ask whether the app is still running (seconds).")

    @field_validator("app")
    @classmethod
    def _home(cls, path: Path) -> Path:
        return path.expanduser()

    @field_validator("tunneld")
    @classmethod
    def _a_port(cls, address: str) -> str:
        port = int(address.rsplit(":", 1)[1])
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not a TCP port (1 to 65535)")
        return address


def ipa_version(ipa: Path) -> str:
    """CFBundleShortVersionString (CFBundleVersion) of the app inside an .ipa."""
    with zipfile.ZipFile(ipa) as archive:
        name = next((n for n in archive.namelist()
                     if n.startswith("Payload/") and n.endswith(".app/Info.plist") and n.count("/") == 2), None)
        if name is None:
            raise ValueError("no Payload/*.app/Info.plist inside")
        return installed_version(plistlib.loads(archive.read(name)))


def installed_version(info: dict | None) -> str | None:
    """'1.4.0 (140)' from Info.plist values (an .ipa's, or what InstallationProxy reports), None without."""
    if info is None:
        return None
    return f"{info.get('CFBundleShortVersionString', '?')} ({info.get('CFBundleVersion', '?')})"


class Device(BaseDevice):
    def __init__(self, config: Config) -> None:
        host, port = config.tunneld.rsplit(":", 1)
        super().__init__(config)
        self.session = Session(config.udid, config.id, (host, int(port)))
        self._values: dict = {}
        self._facts: dict[str, str] = {}

    # -- before a run --------------------------------------------------------------------------------------
    def reachable(self) -> tuple[bool, str]:
        """Everything a run needs, checked in the order a person would fix it; the first gap is the reason."""
        try:
            if self.config.udid not in self.session.attached():
                return False, f"usbmux does not see {self.config.udid}: plug the iPhone in, unlock it, and tap Trust"
            self._values = self.session.values()
            ios_major = int(str(self._values.get("ProductVersion", "0")).split(".")[0])
            if not self.session.developer_mode():
                return False, ("Developer Mode is off: on the iPhone, Settings > Privacy & Security > Developer Mode, "
                               "then restart it")
            if not self.session.ddi_mounted(ios_major):
                return False, "no developer disk image is mounted: run 'pymobiledevice3 mounter auto-mount'"
            route = self.session.connect_developer_services(ios_major, self.config.tunnel)
        except DeviceError as exc:
            return False, exc.reason
        self._facts = {name: str(self._values[key]) for name, key in FACT_KEYS.items() if key in self._values}
        self._facts.update(developer_services=route, app_bundle_id=self.config.bundle_id,
                           compute_units=self.config.compute_units,
                           tunnel_needed="yes" if ios_major >= TUNNEL_MIN_IOS else "no")
        return True, f"iOS {ios_major}, developer services over {route}"

    def prepare(self) -> tuple[bool, str]:
        """Before a run (not on 'harness devices'): install the benchmark app if its version differs."""
        try:
            self._facts["app_version"] = self._ensure_app()
        except DeviceError as exc:
            return False, exc.reason
        return True, "ready"

    def _ensure_app(self) -> str:
        """Install the benchmark app when the phone has another version (or none); return the version."""
        try:
            wanted = ipa_version(self.config.app)
        except (OSError, ValueError, zipfile.BadZipFile, plistlib.InvalidFileException) as exc:
            raise DeviceError(self.id, ["read", str(self.config.app)],
                              f"cannot read the benchmark app {self.config.app} ({exc}); app: must be a signed .ipa") from None
        have = installed_version(self.session.app_info(self.config.bundle_id))
        if have != wanted:
            self.session.install(self.config.app)
            have = installed_version(self.session.app_info(self.config.bundle_id))
            if have != wanted:
                raise DeviceError(self.id, ["install", str(self.config.app)],
                                  f"installed {self.config.app.name} but the phone reports version {have}, not {wanted}: "
                                  f"is bundle_id {self.config.bundle_id} the app's CFBundleIdentifier?")
        return wanted

    def facts(self) -> DeviceFacts:
        facts = dict(self._facts)
        raw = self._battery_raw()
        if raw is not None:
            facts["battery_temperature_raw"] = f"{raw:g}"
        return DeviceFacts(device_id=self.id, platform="ios", simulated=False, facts=facts)

    # -- files in the app's container -------------------------------------------------------------------
    def push(self, local: Path, sha256: str) -> str:
        """Into the container under Documents/harness/<sha256>/; a folder is renamed into place only when whole."""
        final = f"{CONTAINER_ROOT}/{sha256}"
        remote = f"{final}/{local.name}"
        if self.session.container_exists(self.config.bundle_id, remote):
            self.pushes.append({"path": remote, "bytes": 0, "seconds": 0.0, "skipped": True})
            return remote
        partial = f"{CONTAINER_ROOT}/{sha256}.partial"
        files = ([(p, f"{partial}/{local.name}/{p.relative_to(local).as_posix()}") for p in sorted(local.rglob("*")) if p.is_file()]
                 if local.is_dir() else [(local, f"{partial}/{local.name}")])
        started = time.perf_counter()
        self.session.container_push(self.config.bundle_id, files, final=(partial, final))
        size = sum(p.stat().st_size for p, _ in files)
        self.pushes.append({"path": remote, "bytes": size, "seconds": time.perf_counter() - started, "skipped": False})
        return remote

    def put(self, local: Path, remote: str) -> None:
        """A small file (a job) at a chosen path, no content addressing."""
        self.session.container_push(self.config.bundle_id, [(local, remote)], final=None, timeout_s=60)

    def pull(self, remote: str) -> str | None:
        data = self.session.container_pull(self.config.bundle_id, remote)
        return None if data is None else data.decode("utf-8", errors="replace")

    # -- running the app ----------------------------------------------------------------------------------
    def run(self, argv: list[str], timeout_s: float, env: dict[str, str] | None = None) -> CommandResult:
        """Launch the benchmark app with ``argv`` as its arguments and wait for it, killing it on timeout.

        ProcessControl reports no exit code: an app that ended by itself gets exit_code 0 and its
        result file says how it went.
        """
        shown = [self.config.bundle_id, *argv]
        started = time.perf_counter()
        pid = self.session.launch(self.config.bundle_id, argv, dict(env or {}))
        while self.session.is_running(pid):
            if time.perf_counter() - started > timeout_s:
                self.session.kill(pid)
                return CommandResult(shown, None, "", "", time.perf_counter() - started, timed_out=True)
            time.sleep(self.config.poll_s)
        return CommandResult(shown, 0, f"pid {pid} ended", "", time.perf_counter() - started)

    # -- thermals --------------------------------------------------------------------------------------------
    def _battery_raw(self) -> float | None:
        value = self.session.battery().get("Temperature")
        return float(value) if isinstance(value, (int, float)) else None

    def sample_thermals(self) -> list[ThermalSample]:
        raw = self._battery_raw()
        if raw is None:
            return []
        return [ThermalSample(0.0, "battery", "temp", raw / BATTERY_TEMP_DIVISOR, "C"),
                ThermalSample(0.0, "battery IOPMPowerSource.Temperature", "raw", raw,
                              f"raw (C = raw / {BATTERY_TEMP_DIVISOR:g})")]

    def close(self) -> None:
        self.session.close()
