"""Every pymobiledevice3 call the harness makes, and nothing else.

pymobiledevice3 is async since v8 and its DVT API changed in v9; it is pinned to one
major version (pyproject.toml) and used only from here, so an API change touches
this file alone.  :class:`Session` is a synchronous facade: a private event loop runs
in a thread of its own (pymobiledevice3's connections belong to the loop that opened
them), and every call waits for its coroutine with a time limit, so the thermal
sampler's thread and the cell's thread can both use one session.

The library's entry points are gathered in :class:`Api`, which the tests replace with
fakes written against the same signatures (tests/ios_fakes.py checks them).
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.errors import DeviceError

PINNED_MAJOR = 11
TUNNEL_MIN_IOS = 17  # developer services need a tunnel (tunneld or userspace RSD) from iOS 17


@dataclass(frozen=True)
class Api:
    """The pymobiledevice3 names the harness uses (classes and coroutine functions)."""

    list_devices: Any
    create_using_usbmux: Any
    get_tunneld_device_by_udid: Any
    UserspaceRsdTunnel: Any
    MobileImageMounterService: Any
    InstallationProxyService: Any
    HouseArrestService: Any
    DvtProvider: Any
    ProcessControl: Any
    DeviceInfo: Any
    DiagnosticsService: Any


def real_api() -> Api:
    """The installed pymobiledevice3, after checking it is the pinned major version."""
    from importlib import metadata

    from harness.errors import UserError
    from harness.extras import install_command

    try:
        version = metadata.version("pymobiledevice3")
    except metadata.PackageNotFoundError:
        raise UserError("iPhones need the 'pymobiledevice3' package, which the light install leaves out.",
                        fix=install_command("ios")) from None
    if int(version.split(".")[0]) != PINNED_MAJOR:
        raise UserError(f"pymobiledevice3 {version} is installed; harness is written against {PINNED_MAJOR}.x.",
                        fix=f"pip install 'pymobiledevice3>={PINNED_MAJOR},<{PINNED_MAJOR + 1}'")
    from pymobiledevice3.lockdown import create_using_usbmux
    from pymobiledevice3.remote.userspace_tunnel import UserspaceRsdTunnel
    from pymobiledevice3.services.diagnostics import DiagnosticsService
    from pymobiledevice3.services.dvt.instruments.device_info import DeviceInfo
    from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
    from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl
    from pymobiledevice3.services.house_arrest import HouseArrestService
    from pymobiledevice3.services.installation_proxy import InstallationProxyService
    from pymobiledevice3.services.mobile_image_mounter import MobileImageMounterService
    from pymobiledevice3.tunneld.api import get_tunneld_device_by_udid
    from pymobiledevice3.usbmux import list_devices

    # Read the imports above by name once, here: in Python 3.11 `locals()` inside a comprehension is the
    # comprehension's own scope, which holds none of them.
    imported = locals()
    return Api(**{f.name: imported[f.name] for f in fields(Api)})


_api: Api | None = None


def api() -> Api:
    global _api
    if _api is None:
        _api = real_api()
    return _api


def use_api(replacement: Api | None) -> None:
    """Swap the library for fakes (tests), or back to the real one with None."""
    global _api
    _api = replacement


# One actionable line per failure, as pymobiledevice3's own CLI does: exception class name -> what to do.
ADVICE = {
    "NoDeviceConnectedError": "no iPhone is connected: plug it in and unlock it",
    "DeviceNotFoundError": "the iPhone is not connected (or was unplugged): plug it in and unlock it",
    "ConnectionFailedToUsbmuxdError": "usbmuxd is not running: start it (Linux: 'sudo systemctl start usbmuxd')",
    "NotPairedError": "this host is not paired with the iPhone: unlock it and tap Trust",
    "NotTrustedError": "the iPhone does not trust this host: unlock it and tap Trust",
    "PairingDialogResponsePendingError": "the iPhone shows a Trust dialog: unlock it and tap Trust",
    "UserDeniedPairingError": "pairing was denied on the iPhone: unplug, replug, and tap Trust",
    "PasswordRequiredError": "the iPhone is locked: unlock it",
    "PasscodeRequiredError": "the iPhone is locked: unlock it",
    "DeveloperModeIsNotEnabledError": "Developer Mode is off: Settings > Privacy & Security > Developer Mode, then restart",
    "DeveloperDiskImageNotFoundError": "no developer disk image is mounted: run 'pymobiledevice3 mounter auto-mount'",
    "NotMountedError": "no developer disk image is mounted: run 'pymobiledevice3 mounter auto-mount'",
    "TunneldConnectionError": "tunneld is not running",
    "UserspaceTunnelUnavailableError": "not available (it needs iOS 17.4 or later, over USB)",
    "AppNotInstalledError": "the benchmark app is not installed on the iPhone",
    "ContainerRefusedError": "the iPhone would not open the benchmark app's container (HouseArrest VendContainer), "
                             "which it does only for a development-signed app: sign the .ipa with a development "
                             "provisioning profile that lists this iPhone (get-task-allow), not App Store, ad hoc "
                             "or enterprise distribution",
    "AppInstallError": "installing the benchmark app failed: check its signing and provisioning profile",
    "ConnectionTerminatedError": "the iPhone went away mid-run (unplugged, locked, or rebooted)",
    "StreamClosedError": "the iPhone went away mid-run (unplugged, locked, or rebooted)",
    "ConnectionAbortedError": "the iPhone went away mid-run (unplugged, locked, or rebooted)",
    "ConnectionResetError": "the iPhone went away mid-run (unplugged, locked, or rebooted)",
    "BrokenPipeError": "the iPhone went away mid-run (unplugged, locked, or rebooted)",
    "TimeoutError": "the iPhone did not answer in time",
}


class ContainerRefusedError(Exception):
    """HouseArrest would not vend the app's container (the app is not development-signed)."""


# The device was there and stopped answering: a cell cut short by these is "lost" and measured again by --resume.
GONE = {"ConnectionTerminatedError", "StreamClosedError", "ConnectionAbortedError", "ConnectionResetError",
        "BrokenPipeError", "TimeoutError"}


def advice(exc: BaseException) -> str:
    """The one line for an exception: the first known class in its hierarchy, else its text."""
    for cls in type(exc).__mro__:
        if cls.__name__ in ADVICE:
            return ADVICE[cls.__name__]
    return f"{type(exc).__name__}: {exc}"


class Session:
    """One iPhone, by UDID: lockdown, and (iOS 17+) a tunnel for the developer services."""

    def __init__(self, udid: str, device_id: str, tunneld_address: tuple[str, int], timeout_s: float = 30.0) -> None:
        self.udid, self.device_id, self.tunneld_address, self.timeout_s = udid, device_id, tunneld_address, timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"pmd3-{device_id}", daemon=True)
        self._thread.start()
        self._lockdown = None
        self._dvt_provider = None  # the lockdown client (< iOS 17) or the tunnel's RSD (17+)
        # One call at a time: services are started over the one lockdown connection, whose plist
        # requests and replies must not interleave (the sampler's thread calls in beside the cell's).
        self._one_at_a_time = threading.Lock()
        self._dvt: tuple | None = None  # (ProcessControl, DeviceInfo) on one DTX connection, kept for the session
        self._dvt_stack = AsyncExitStack()

    # -- plumbing ---------------------------------------------------------------------------------------
    def _call(self, what: str, coro_fn, *args, timeout_s: float | None = None, **kwargs):
        """Run one library coroutine on the session's loop; every failure becomes a DeviceError with advice."""
        async def guarded():
            return await asyncio.wait_for(coro_fn(*args, **kwargs), timeout_s or self.timeout_s)

        try:
            with self._one_at_a_time:
                return asyncio.run_coroutine_threadsafe(guarded(), self._loop).result()
        except Exception as exc:  # noqa: BLE001 - translated into one line the user can act on
            gone = any(cls.__name__ in GONE for cls in type(exc).__mro__)
            raise DeviceError(self.device_id, [what], advice(exc), lost=gone) from exc

    async def _lockdown_client(self):
        if self._lockdown is None:
            self._lockdown = await api().create_using_usbmux(serial=self.udid)
        return self._lockdown

    # -- discovery and facts ---------------------------------------------------------------------------
    def attached(self) -> list[str]:
        """UDIDs usbmux sees now."""
        async def go():
            return [d.serial for d in await api().list_devices()]
        return self._call("usbmux list_devices", go)

    def values(self) -> dict[str, Any]:
        """Lockdown's device values (ProductType, ProductVersion, DeviceName, HardwareModel, UniqueDeviceID...)."""
        async def go():
            return await (await self._lockdown_client()).get_value()
        return self._call("lockdown get_value", go)

    def developer_mode(self) -> bool:
        async def go():
            return await (await self._lockdown_client()).get_developer_mode_status()
        return self._call("lockdown developer mode", go)

    def ddi_mounted(self, ios_major: int) -> bool:
        image = "Personalized" if ios_major >= TUNNEL_MIN_IOS else "Developer"

        async def go():
            async with api().MobileImageMounterService(await self._lockdown_client()) as mounter:
                return await mounter.is_image_mounted(image)
        return self._call("mobile_image_mounter is_image_mounted", go)

    def connect_developer_services(self, ios_major: int, mode: str = "auto") -> str:
        """Where DVT goes: lockdown below iOS 17; from 17 a tunnel, tunneld's or a userspace one of our own.

        ``mode`` is auto (tunneld, else userspace), tunneld or userspace.  Raises naming each
        tunnel that was tried and why it is missing.
        """
        if ios_major < TUNNEL_MIN_IOS:
            async def direct():
                self._dvt_provider = await self._lockdown_client()
            self._call("lockdown", direct)
            return "lockdown"
        host, port = self.tunneld_address
        missing = []
        if mode in ("auto", "tunneld"):
            async def via_tunneld():
                return await api().get_tunneld_device_by_udid(self.udid, tunneld_address=self.tunneld_address)
            try:
                rsd = self._call("tunneld get_tunneld_device_by_udid", via_tunneld)
            except DeviceError as exc:
                missing.append(f"tunneld at {host}:{port}: {exc.reason}")
            else:
                if rsd is not None:
                    self._dvt_provider = rsd
                    return "tunneld"
                missing.append(f"tunneld at {host}:{port} has no tunnel to this iPhone")
        if mode in ("auto", "userspace"):
            async def userspace():
                tunnel = api().UserspaceRsdTunnel(serial=self.udid)
                self._dvt_provider = await tunnel.aopen()
                self._dvt_stack.push_async_callback(tunnel.aclose)
            try:
                self._call("userspace tunnel", userspace)
                return "userspace tunnel"
            except DeviceError as exc:
                missing.append(f"userspace tunnel: {exc.reason}")
        raise DeviceError(self.device_id, ["tunnel"], f"iOS {ios_major} needs a tunnel for the developer services and "
                          f"none is available ({'; '.join(missing)}): start 'sudo python3 -m pymobiledevice3 remote "
                          "tunneld' with the iPhone attached (a userspace tunnel needs iOS 17.4 or later)")

    # -- the benchmark app -------------------------------------------------------------------------------
    def app_info(self, bundle_id: str) -> dict | None:
        async def go():
            async with api().InstallationProxyService(await self._lockdown_client()) as proxy:
                return (await proxy.get_apps(bundle_identifiers=[bundle_id])).get(bundle_id)
        return self._call("installation_proxy get_apps", go)

    def install(self, ipa: Path, timeout_s: float = 600) -> None:
        async def go():
            async with api().InstallationProxyService(await self._lockdown_client()) as proxy:
                await proxy.install_from_local(ipa)
        self._call("installation_proxy install_from_local", go, timeout_s=timeout_s)

    async def _container(self, bundle_id: str):
        try:
            return await api().HouseArrestService.create(await self._lockdown_client(), bundle_id, documents_only=False)
        except Exception as exc:
            # pymobiledevice3 11.x raises its base exception, with the device's error text, for any refusal
            # other than "not installed" (services/house_arrest.py, send_command).
            if type(exc).__name__ == "PyMobileDevice3Exception" and "refused to open the container" in str(exc):
                raise ContainerRefusedError(str(exc)) from exc
            raise

    def container_exists(self, bundle_id: str, path: str) -> bool:
        async def go():
            afc = await self._container(bundle_id)
            try:
                return await afc.exists(path)
            finally:
                await afc.close()
        return self._call("house_arrest exists", go)

    def container_push(self, bundle_id: str, files: list[tuple[Path, str]], final: tuple[str, str] | None,
                       timeout_s: float = 600) -> None:
        """Push (local, remote) files into the app's container, then rename ``final`` (src, dst) into place."""
        async def go():
            afc = await self._container(bundle_id)
            try:
                made = set()
                for local, remote in files:
                    folder = remote.rsplit("/", 1)[0]
                    if folder not in made:
                        await afc.makedirs(folder)
                        made.add(folder)
                    await afc.set_file_contents(remote, local.read_bytes())
                if final is not None:
                    await afc.rename(*final)
            finally:
                await afc.close()
        self._call("house_arrest push", go, timeout_s=timeout_s)

    def container_pull(self, bundle_id: str, path: str) -> bytes | None:
        async def go():
            afc = await self._container(bundle_id)
            try:
                if not await afc.exists(path):
                    return None
                return await afc.get_file_contents(path)
            finally:
                await afc.close()
        return self._call("house_arrest pull", go)

    async def _instruments(self):
        """ProcessControl and DeviceInfo, opened once: polling must not open a DTX connection every time."""
        if self._dvt is None:
            dvt = await self._dvt_stack.enter_async_context(api().DvtProvider(self._dvt_provider))
            self._dvt = (await self._dvt_stack.enter_async_context(api().ProcessControl(dvt)),
                         await self._dvt_stack.enter_async_context(api().DeviceInfo(dvt)))
        return self._dvt

    def launch(self, bundle_id: str, arguments: list[str], environment: dict[str, str]) -> int:
        async def go():
            process_control, _ = await self._instruments()
            return await process_control.launch(bundle_id, arguments=arguments, kill_existing=True,
                                                environment=environment)
        return self._call("dvt process_control launch", go)

    def is_running(self, pid: int) -> bool:
        async def go():
            _, device_info = await self._instruments()
            return await device_info.is_running_pid(pid)
        return self._call("dvt device_info is_running_pid", go)

    def kill(self, pid: int) -> None:
        async def go():
            process_control, _ = await self._instruments()
            await process_control.kill(pid)
        self._call("dvt process_control kill", go)

    def battery(self) -> dict:
        """IOPMPowerSource from the IORegistry (its ``Temperature`` among the keys)."""
        async def go():
            async with api().DiagnosticsService(await self._lockdown_client()) as diagnostics:
                return await diagnostics.get_battery() or {}
        return self._call("diagnostics get_battery", go, timeout_s=10)

    def close(self) -> None:
        async def go():
            await self._dvt_stack.aclose()
            if self._lockdown is not None:
                await self._lockdown.close()
        try:
            asyncio.run_coroutine_threadsafe(go(), self._loop).result(5)
        except Exception:  # noqa: BLE001 - closing a connection to a phone that is gone is not an error
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
