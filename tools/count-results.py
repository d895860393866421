#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Count test results at the subtest level from meson's testlog*.json files.

Each line of a testlog JSON file describes one test program run. For TAP
programs (GTest) every "ok"/"not ok" line counts; "# SKIP" and "# TODO" count
as skipped. A program that fails without reporting a failing subtest (crash,
timeout, valgrind errors) adds one failure, and planned subtests that never
ran ("1..N" with fewer results) count as failed. Other programs count once,
by their result.

Prints a table of failures and ends with the line
"N passed, N failed, N skipped". Exits 1 if anything failed.
"""

import argparse
import json
import os
import re
import sys

TAP_RESULT = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*-?\s*([^#]*)(#\s*(.*))?$")
TAP_PLAN = re.compile(r"^1\.\.(\d+)")
GOOD = {"OK", "EXPECTEDFAIL"}


def setup_label(path):
    base = os.path.basename(path)
    m = re.match(r"testlog-(.+)\.json$", base)
    return m.group(1) if m else ""


def count_test(entry, label, failures):
    name = entry.get("name", "?")
    if label:
        name = "[%s] %s" % (label, name)
    result = entry.get("result", "ERROR")
    stdout = entry.get("stdout") or ""
    passed = failed = skipped = 0
    seen = 0
    plan = None
    is_tap = False

    for line in stdout.splitlines():
        m = TAP_PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            is_tap = True
            continue
        m = TAP_RESULT.match(line)
        if not m:
            continue
        is_tap = True
        seen += 1
        directive = (m.group(5) or "").strip().upper()
        if directive.startswith("SKIP") or directive.startswith("TODO"):
            skipped += 1
        elif m.group(1) == "ok":
            passed += 1
        else:
            failed += 1
            failures.append((name, m.group(3).strip() or line.strip()))

    if not is_tap:
        if result in GOOD:
            return 1, 0, 0
        if result == "SKIP":
            return 0, 0, 1
        failures.append((name, "%s (exit status %s)" % (result, entry.get("returncode"))))
        return 0, 1, 0

    if result not in GOOD and result != "SKIP":
        if plan is not None and seen < plan:
            missing = plan - seen
            failed += missing
            failures.append((name, "%s (exit status %s): %d of %d subtests did not run"
                             % (result, entry.get("returncode"), missing, plan)))
        elif failed == 0:
            failed += 1
            failures.append((name, "%s (exit status %s) after all subtests passed"
                             % (result, entry.get("returncode"))))
    return passed, failed, skipped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="*", help="testlog*.json files")
    parser.add_argument("--extra-failure", action="append", default=[],
                        metavar="WHAT", help="count a failure outside the logs "
                        "(e.g. a build step)")
    args = parser.parse_args()

    passed = failed = skipped = 0
    failures = []

    for what in args.extra_failure:
        failed += 1
        failures.append(("(build)", what))

    for path in args.logs:
        label = setup_label(path)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                lines = f.readlines()
        except OSError as e:
            failed += 1
            failures.append((path, "cannot read: %s" % e))
            continue
        for raw in lines:
            raw = raw.strip()
            if not raw:
                continue
            try:
                entry = json.loads(raw)
            except ValueError as e:
                failed += 1
                failures.append((path, "bad JSON line: %s" % e))
                continue
            p, f_, s = count_test(entry, label, failures)
            passed += p
            failed += f_
            skipped += s

    if failures:
        width = min(max(len(n) for n, _ in failures), 40)
        print()
        print("Failures:")
        for name, what in failures:
            print("  %-*s  %s" % (width, name, what))
        print()

    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
