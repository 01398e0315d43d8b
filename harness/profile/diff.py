"""Which operators explain a latency change between two profiled cells of one model (INT4 against INT8, tonight
against a baseline): per operator, the change of its time per inference, and the share of the whole change the
largest few carry."""

from __future__ import annotations

from dataclasses import dataclass

from harness.profile.records import CellOperator
from harness.words import counted

TOP_OPERATORS = 3  # "the top 3 operators explain X% of the change"


@dataclass(frozen=True)
class OperatorChange:
    name: str
    backend: str  # where it ran in B (in A when B has it not)
    a_ms: float  # per inference; 0 where that cell has no such operator
    b_ms: float

    @property
    def delta_ms(self) -> float:
        return self.b_ms - self.a_ms


@dataclass(frozen=True)
class OperatorDiff:
    change_ms: float  # B's profiled time per inference minus A's
    top: list[OperatorChange]  # the operators that moved most in the change's direction, largest first
    explained_share: float | None  # of change_ms the top ones carry; None when nothing changed

    def reading(self) -> str:
        """One line: "top 3 operators explain 84% of the +1.2 ms change: X (+0.9 ms), ..."."""
        if self.explained_share is None or not self.top:
            return "no change in profiled time"
        named = ", ".join(f"{c.name} ({c.delta_ms:+.3g} ms)" for c in self.top)
        who = f"top {counted(len(self.top), 'operator')} explain" if len(self.top) > 1 else "top operator explains"
        return f"{who} {self.explained_share:.0%} of the {self.change_ms:+.3g} ms change: {named}"


def operator_diff(a: list[CellOperator], b: list[CellOperator], top: int = TOP_OPERATORS) -> OperatorDiff:
    """B against A, operators matched by name (an operator one side lacks counts 0 there)."""
    a_by, b_by = {r.name: r for r in a}, {r.name: r for r in b}
    changes = [OperatorChange(name, (b_by.get(name) or a_by[name]).backend,
                              a_by[name].per_inference_ms if name in a_by else 0.0,
                              b_by[name].per_inference_ms if name in b_by else 0.0)
               for name in sorted(a_by.keys() | b_by.keys())]
    change_ms = sum(c.b_ms for c in changes) - sum(c.a_ms for c in changes)
    if change_ms == 0:
        return OperatorDiff(0.0, [], None)
    direction = 1 if change_ms > 0 else -1
    leading = sorted((c for c in changes if c.delta_ms * direction > 0), key=lambda c: -abs(c.delta_ms))[:top]
    return OperatorDiff(change_ms, leading, sum(c.delta_ms for c in leading) / change_ms)
