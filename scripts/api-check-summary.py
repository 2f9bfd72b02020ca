"""Summary of a schemathesis JSON report (scripts/api-check.sh): cases, failures by check."""

import json
import sys


def main(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    cases = report.get("test_cases", {})
    print(f"  schemathesis {report.get('schemathesis_version', '?')}, seed {report.get('seed', '?')}, "
          f"{report.get('running_time', 0):.0f} s")
    operations = report.get("operations", {}) or {}
    print(f"  operations: {operations.get('tested', '?')} tested of {operations.get('total', '?')}")
    print(f"  test cases: {cases.get('generated', 0)} generated, "
          f"{cases.get('with_failures', 0)} with failures, {cases.get('unique_failures', 0)} unique failures")
    phases = report.get("phases", {}) or {}
    print("  phases: " + ", ".join(f"{name} {p.get('status')}" for name, p in phases.items()))
    failures = report.get("failures", []) or []
    if not failures:
        print("  failures: none")
    for failure in failures:
        print(f"  {failure.get('code')} {failure.get('title')}: {failure.get('count')}")
        for operation in failure.get("operations", []):
            print(f"      {operation}")
    for error in report.get("errors", []) or []:
        print(f"  error: {error.get('title')}: {error.get('count')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
