"""What a nightly leaves behind for machines: a JUnit XML file and a JSON summary."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from harness.termsafe import xml_safe
from harness.outfile import replacing, write_text

from harness.report.verdict import UNJUDGED, Check  # checks that could not judge are JUnit 'skipped', with the reason


def write_junit(checks: list[Check], run_id: str, out: Path) -> Path:
    """One test case per check, grouped in one suite per device; failing checks are <failure>s."""
    root = ET.Element("testsuites", name=f"harness nightly {run_id}")
    for device in sorted({c.device_id for c in checks}):
        mine = [c for c in checks if c.device_id == device]
        suite = ET.SubElement(root, "testsuite", name=device, tests=str(len(mine)),
                              failures=str(sum(c.failing for c in mine)),
                              skipped=str(sum(c.status in UNJUDGED for c in mine)))
        for check in mine:
            case = ET.SubElement(suite, "testcase", classname=f"{device}.{check.kind}", name=check.subject)
            if check.failing:
                ET.SubElement(case, "failure", message=f"{check.status}: {check.detail}", type=check.status)
            elif check.status in UNJUDGED:
                ET.SubElement(case, "skipped", message=check.detail)
            ET.SubElement(case, "system-out").text = f"{check.status}: {check.detail}"
    _xml_safe_tree(root)
    with replacing(out) as temp:
        ET.ElementTree(root).write(temp, encoding="utf-8", xml_declaration=True)
    return out


def _xml_safe_tree(root: ET.Element) -> None:
    """Names and details come from outside (a model named with a control character): ElementTree escapes
    markup but writes characters XML 1.0 forbids as they are, which makes the whole file ill-formed."""
    for element in root.iter():
        element.attrib = {key: xml_safe(value) for key, value in element.attrib.items()}
        if element.text is not None:
            element.text = xml_safe(element.text)


def write_summary(checks: list[Check], run_id: str, baseline_id: str | None, out: Path) -> Path:
    from harness.validation import strict_json

    counts: dict[str, int] = {}
    for c in checks:
        counts[c.status] = counts.get(c.status, 0) + 1
    write_text(out, strict_json({  # a NaN figure is null: bare NaN is not JSON
        "run_id": run_id, "baseline_run_id": baseline_id, "passed": not any(c.failing for c in checks),
        "counts": counts, "checks": [c.__dict__ for c in checks],
    }, indent=2, default=str) + "\n")
    return out
