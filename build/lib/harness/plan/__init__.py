"""Run plans (``plans/*.yaml``): which builds on which devices, how many iterations, which budgets."""

from harness.plan.models import Budgets, Cooldown, Plan, load_plan
from harness.plan.expand import CellSpec, SkippedCell, expand_plan

__all__ = ["Budgets", "CellSpec", "Cooldown", "Plan", "SkippedCell", "expand_plan", "load_plan"]
