"""Whether a stored run is complete: the one rule that `harness runs`, a report's header, the JSON outputs, the
nightly's refusals and its choice of a baseline all read.

The runs table says 'complete' once the controller got to the end of the plan, even when some of its cells were
lost (their phone was busy, never answered or went away): those cells hold no measurement, and --resume measures
them.  Such a run is "incomplete" here, as is a run still measuring or one whose controller was stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.words import counted

RUNS_PLANNED = "runs_planned"  # in a run's settings: every run it was started to measure


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str  # "complete", "incomplete" (finished with lost cells), "running", or "interrupted"
    cells: int  # cells stored
    lost_cells: int
    runs_stored: int  # its lost runs left out
    runs_planned: int | None  # None for a run stored before runs were counted

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def label(self) -> str:
        """The status as every output shows it: "incomplete (2 lost)" for a run with lost cells."""
        return f"incomplete ({self.lost_cells} lost)" if self.status == "incomplete" else self.status

    @property
    def unfinished(self) -> str | None:
        """Why the run cannot be judged yet ("incomplete run: N of M runs stored (...)"), None once it is complete:
        a verdict on part of a plan would judge builds that were never measured."""
        if self.complete:
            return None
        of = f" of {self.runs_planned}" if self.runs_planned else ""
        why = (f"{counted(self.lost_cells, 'cell')} lost" if self.status == "incomplete"
               else f"the run is {self.status}")
        return f"incomplete run: {self.runs_stored}{of} runs stored ({why})"


def run_state(store, run_id: str) -> RunState:
    """The state of a stored run (``store``: an open harness.store.Store): a run stored as 'running' that no process
    holds any more was stopped without saying so (SIGKILL, a power cut), and is 'interrupted'."""
    record = store.run(run_id)
    cells = store.stored_runs(run_id)
    lost = sum(status == "lost" for status, _ in cells.values())
    status = record.status
    if status == "running" and not store.is_claimed(run_id):
        status = "interrupted"
    elif status == "complete" and lost:
        status = "incomplete"
    return RunState(run_id=run_id, status=status, cells=len(cells), lost_cells=lost,
                    runs_stored=sum(len(indices) for _, indices in cells.values()),
                    runs_planned=record.settings.get(RUNS_PLANNED))


def stored_run_state(db, run_id: str) -> RunState:
    """``run_state`` of a run in the database at ``db``, opened read-only for it."""
    from harness.store.db import Store

    with Store(db, read_only=True) as store:
        return run_state(store, run_id)


def runs_by_state(store) -> list[tuple]:
    """Every stored run (oldest first) as (run, its RunState), the run's ``status`` set as this rule has it
    ("incomplete" for a run with lost cells, "interrupted" for one no process holds), for outputs that walk every
    run (the history site)."""
    pairs = []
    for run in store.every_run():
        state = run_state(store, run.run_id)
        pairs.append((replace(run, status=state.status), state))
    return pairs
