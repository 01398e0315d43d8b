"""User-facing errors.

Every mistake a user can make (a bad YAML file, an unknown device, a model file
that is not what its suffix says) is raised as a :class:`UserError`.  The CLI
turns it into one paragraph on stderr and exit code 2, never a traceback.
Anything else that escapes is a bug in the harness and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_USER_ERROR = 2


@dataclass
class UserError(Exception):
    """A problem the user can fix: says what, where, and how to fix it."""

    message: str
    path: Path | str | None = None
    line: int | None = None
    fix: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        text = f"{where}{self.message}"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text

    def __str__(self) -> str:  # dataclass would otherwise print the fields
        return self.render()


class DeviceError(Exception):
    """A command on a device failed; carries everything needed to debug it.

    ``lost`` marks a device that stopped answering mid-command (cable, adb, a reboot): its cell is
    stored as lost, and ``--resume`` measures it again once the device is back.

    Modelled on Mobly's AdbError: the command, the device, the exit code and the
    output travel together so a failed cell's log explains itself.
    """

    def __init__(
        self,
        device_id: str,
        argv: list[str],
        reason: str,
        exit_code: int | None = None,
        output: str = "",
        lost: bool = False,
    ) -> None:
        self.device_id = device_id
        self.lost = lost  # the device stopped answering (not a command that failed): --resume measures again
        self.argv = list(argv)
        self.reason = reason
        self.exit_code = exit_code
        self.output = output
        super().__init__(self.render())

    def render(self) -> str:
        code = "" if self.exit_code is None else f" (exit {self.exit_code})"
        tail = self.output[-2000:].strip()
        text = f"[{self.device_id}] {self.reason}{code}: {' '.join(self.argv)}"
        return f"{text}\n{tail}" if tail else text
