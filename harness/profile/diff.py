"""Which operators explain a latency change between two profiled cells of one model (INT4 against INT8, tonight
against a baseline): operators paired across the two builds, per pair the change of its time per inference, and
the share of the whole change the largest few carry.  Every figure is an operator's median per inference (its median
call times its calls per inference), as on the operator cards: a profiling run times few inferences, and one call
held up by other load moves a total by more than a whole layer's change.

Two builds of one model name their nodes differently: a dynamic-quantized MatMul is ``<node>_quant``
(DynamicQuantizeMatMul), an INT4 one ``<node>_Q4`` (MatMulNBits), an exporter's ``node_linear_32_MatMul`` is
another's ``node_linear_32`` (Gemm), ORT's optimizer fuses into ``fused <node>`` or ``<node>/...Fusion``.  Names
are compared with those marks taken off (:func:`pairing_key`); what is left unpaired is paired by operator kind
when each build has exactly one of that kind, else listed as added (only B has it) or removed (only A has it).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

from harness.profile.records import CellOperator, shown_name, top_level
from harness.words import counted

TOP_OPERATORS = 3  # "the top 3 operators explain X% of the change"
# What an explanation's change is, named in its line: each operator's median per inference moved, summed.  It is not
# the difference of the two cards' profiled totals (each the median of the inferences' summed time): a median of sums
# is not a sum of medians, so the two differ a little, and the line says which one it means.
CHANGE = "sum of the operators' median changes"
LISTED_APART = 3  # added and removed operators named in the reading, largest first

# What a quantizer, an exporter or ORT's graph optimizer adds to a node's name, taken off (repeatedly) to pair it.
_PREFIXES = re.compile(r"^(fused )+")
_SUFFIXES = re.compile(r"(_quant|_Q4|_Q8|_MatMulNBits|[/_](MatMul|Gemm|MatMulInteger|MatMulAddFusion)"
                       r"|/[A-Za-z]+Fusion|_fused)$")


def pairing_key(name: str) -> str:
    """A node's name without quantization, op-kind and fusion marks: the same for one layer in every build."""
    key = _PREFIXES.sub("", name)
    while True:
        shorter = _SUFFIXES.sub("", key)
        if shorter == key or not shorter:
            return key
        key = shorter


@dataclass(frozen=True)
class OperatorChange:
    name: str  # B's name (A's when only A has it)
    a_name: str  # A's name; "" when A has no such operator
    b_name: str  # B's name; "" when B has no such operator
    backend: str  # where it ran in B (in A when B has it not)
    a_ms: float  # per inference; 0 where that cell has no such operator
    b_ms: float

    @property
    def delta_ms(self) -> float:
        return self.b_ms - self.a_ms

    def label(self) -> str:
        """"node_linear_32 (INT8: node_linear_32_MatMul_quant)" when the builds name it differently."""
        both = self.a_name and self.b_name and self.a_name != self.b_name
        return f"{shown_name(self.b_name)} (was {shown_name(self.a_name)})" if both else shown_name(self.name)


# The profiled change must agree with the measured one before operators are named for it: the same sign, and within
# this factor of it either way.  The two come from different runs (the profiling runs time few inferences, with the
# profiler's per-node overhead and without the time outside operators), so they never match exactly; but a profiled
# change the other way, or a third of the measured one or less (or three times it or more), describes some other
# change: the tester's INT4 row put +0.217 ms on one layer when the operators' medians moved +0.0075 ms of +0.395 ms.
AGREEMENT_FACTOR = 3.0


def disagreement(profiled_ms: float, measured_ms: float | None) -> str:
    """Why a profiled change cannot stand for the measured one ("" when it can, or when none was measured)."""
    if measured_ms is None or measured_ms == 0:
        return ""
    if profiled_ms * measured_ms < 0:
        return "the other way"
    ratio = profiled_ms / measured_ms
    if ratio <= 1 / AGREEMENT_FACTOR:
        return "a third of it or less"
    if ratio >= AGREEMENT_FACTOR:
        return f"{AGREEMENT_FACTOR:g} times it or more"
    return ""


def _listed(changes: list[OperatorChange]) -> str:
    return ", ".join(f"{c.label()} ({c.delta_ms:+.3g} ms)" for c in changes)


@dataclass(frozen=True)
class OperatorDiff:
    change_ms: float  # B's profiled time per inference minus A's (operators' medians per inference)
    top: list[OperatorChange]  # paired operators that moved most in the change's direction, largest first
    explained_share: float | None  # of change_ms the top ones carry (0-1, a little over 1 within noise_ms); None
    # when the operators do not explain it (within noise, or against the measured change) or the top one alone
    # moved more than all of it
    added: list[OperatorChange]  # only in B, slowest first
    removed: list[OperatorChange]  # only in A, slowest first
    noise_ms: float = 0.0  # how much the profiles' own summed operator time moves between inferences
    measured_change_ms: float | None = None  # the cells' measured P50 change, when known
    others_ms: float = 0.0  # what the paired operators not named moved together
    refused: str = ""  # why a profiled change beyond noise does not explain the measured one (:func:`disagreement`)
    against: list[OperatorChange] = field(default_factory=list)  # when the largest movers exceed the change: the
    # paired operators that moved the other way, largest first

    def reading(self) -> str:
        """One line: "top 2 operators explain 102% of the +0.295 ms sum of the operators' median changes: X
        (+0.208 ms), Y (+0.093 ms); others -0.006 ms; added: ..."."""
        apart = "".join(f"; {word}: " + _listed(group[:LISTED_APART])
                        for word, group in (("added", self.added), ("removed", self.removed)) if group)
        if self.refused:
            return (f"the profiling runs do not explain the measured {self.measured_change_ms:+.3g} ms P50 change: their "
                    f"operators moved {self.change_ms:+.3g} ms ({self.refused}){apart}")
        if self.explained_share is None and self.top:  # the largest alone moved more than the change and the noise
            back = (f"; the other way: {_listed(self.against)}" if self.against
                    else " (other operators moved the other way)")
            return f"{_listed(self.top)} moved more than the whole {self.change_ms:+.3g} ms {CHANGE}{back}{apart}"
        if self.change_ms == 0 and not apart:
            return "no change in profiled time"
        if self.explained_share is None or not self.top:
            spread = f", within the profiles' own spread of ±{self.noise_ms:.3g} ms" if self.noise_ms else ""
            return f"the operators do not explain this change ({self.change_ms:+.3g} ms profiled{spread}){apart}"
        who = f"top {counted(len(self.top), 'operator')} explain" if len(self.top) > 1 else "top operator explains"
        others = f"; others {self.others_ms:+.3g} ms" if self.others_ms else ""
        return (f"{who} {self.explained_share:.0%} of the {self.change_ms:+.3g} ms {CHANGE}: "
                f"{_listed(self.top)}{others}{apart}")


def operator_diff(a: list[CellOperator], b: list[CellOperator], top: int = TOP_OPERATORS,
                  noise_ms: float = 0.0, measured_change_ms: float | None = None) -> OperatorDiff:
    """B against A over their top-level operators (a subgraph's nodes are inside their parent's time), paired by
    :func:`pairing_key`, then by a kind each has once, each by its median per inference.  A change no larger than
    ``noise_ms`` (the profiles' own spread) is not explained, nor one that disagrees with ``measured_change_ms``
    (:func:`disagreement`).  The operators named are the largest movers whose sum stays within the change plus
    ``noise_ms`` (so the share may read a little over 100% when the rest moved back by noise); what the other paired
    operators moved is given as "others"."""
    changes = _paired(top_level(a), top_level(b))
    change_ms = sum(c.delta_ms for c in changes)
    added = sorted((c for c in changes if not c.a_name), key=lambda c: -c.b_ms)
    removed = sorted((c for c in changes if not c.b_name), key=lambda c: -c.a_ms)
    if change_ms == 0 or abs(change_ms) <= noise_ms:
        return OperatorDiff(change_ms, [], None, added, removed, noise_ms, measured_change_ms)
    refused = disagreement(change_ms, measured_change_ms)
    if refused:
        return OperatorDiff(change_ms, [], None, added, removed, noise_ms, measured_change_ms, refused=refused)
    direction = 1 if change_ms > 0 else -1
    paired = [c for c in changes if c.a_name and c.b_name]
    moving = sorted((c for c in paired if c.delta_ms * direction > 0), key=lambda c: -abs(c.delta_ms))
    leading: list[OperatorChange] = []
    for change in moving:
        if len(leading) == top or abs(sum(c.delta_ms for c in leading) + change.delta_ms) > abs(change_ms) + noise_ms:
            break
        leading.append(change)
    if not leading:  # the largest mover alone is more than the change: named, without a share, beside what moved back
        against = sorted((c for c in paired if c.delta_ms * direction < 0), key=lambda c: -abs(c.delta_ms))
        return OperatorDiff(change_ms, moving[:top], None, added, removed, noise_ms, measured_change_ms,
                            against=against[:top])
    named = {id(c) for c in leading}
    others_ms = sum(c.delta_ms for c in paired if id(c) not in named)
    return OperatorDiff(change_ms, leading, sum(c.delta_ms for c in leading) / change_ms, added, removed, noise_ms,
                        measured_change_ms, others_ms)


def _paired(a: list[CellOperator], b: list[CellOperator]) -> list[OperatorChange]:
    a_by, b_by = _by_key(a), _by_key(b)
    pairs = [(a_by.pop(key), b_by.pop(key)) for key in sorted(a_by.keys() & b_by.keys())]
    # What is left: one operator of a kind on each side is that kind's pair (INT8's lone DynamicQuantizeMatMul
    # and INT4's lone MatMulNBits are not: their kinds differ, and they stay added/removed).
    a_kind, b_kind = _by_kind(a_by.values()), _by_kind(b_by.values())
    for kind in sorted(a_kind.keys() & b_kind.keys()):
        if len(a_kind[kind]) == len(b_kind[kind]) == 1:
            ra, rb = a_kind[kind][0], b_kind[kind][0]
            pairs.append((ra, rb))
            a_by.pop(pairing_key(ra[0].name)), b_by.pop(pairing_key(rb[0].name))
    pairs += [(ra, []) for ra in a_by.values()] + [([], rb) for rb in b_by.values()]
    return [_change(ra, rb) for ra, rb in pairs]


def _by_key(operators: list[CellOperator]) -> dict[str, list[CellOperator]]:
    """Operators grouped by pairing key (a quantized layer's several nodes sharing one are counted together)."""
    out: dict[str, list[CellOperator]] = defaultdict(list)
    for r in operators:
        out[pairing_key(r.name)].append(r)
    return dict(out)


def _by_kind(groups) -> dict[str, list[list[CellOperator]]]:
    out: dict[str, list[list[CellOperator]]] = defaultdict(list)
    for group in groups:
        kinds = {r.op_type for r in group}
        if len(kinds) == 1 and "" not in kinds:
            out[kinds.pop()].append(group)
    return out


def _change(a: list[CellOperator], b: list[CellOperator]) -> OperatorChange:
    a_name, b_name = " + ".join(r.name for r in a), " + ".join(r.name for r in b)
    return OperatorChange(name=b_name or a_name, a_name=a_name, b_name=b_name, backend=(b or a)[0].backend,
                          a_ms=sum(r.median_per_inference_ms for r in a),
                          b_ms=sum(r.median_per_inference_ms for r in b))
