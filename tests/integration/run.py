#!/usr/bin/env python3
"""run.py - run the integration tests: tests/integration/test_*.py

    run.py [-k PATTERN]... [-q]

Prints one line per test, then exactly "N passed, M failed, K skipped" last.
Exit: 0 all passed, 1 a test failed or errored, 77 (automake's SKIP) when a
prerequisite is missing or every test was skipped.  With CI=true a missing
prerequisite is a failure, never a skip.  Every test has a time limit
(harness.TestCase.timeout) and the whole run one (--total-timeout); whatever
happens, every process the harness started is stopped.
"""

import argparse
import os
import signal
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True     # no __pycache__ in the source tree

import harness  # noqa: E402

SKIP = 77


class CountingResult(unittest.TextTestResult):
    """TextTestResult that also counts passed/failed/skipped the way we report them"""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.n_passed = self.n_failed = self.n_skipped = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.n_passed += 1

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.n_passed += 1

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.n_failed += 1

    def addError(self, test, err):
        super().addError(test, err)
        self.n_failed += 1

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.n_failed += 1

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.n_skipped += 1

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.n_failed += 1


def watchdog(seconds):
    """end the whole run if it hangs: stop every process, report, exit 1"""
    def expire():
        print("\nrun.py: the run took over %d s; stopping everything" % seconds, flush=True)
        harness.close_all()
        print("0 passed, 1 failed, 0 skipped", flush=True)
        os._exit(1)
    t = threading.Timer(seconds, expire)
    t.daemon = True
    t.start()


def main():
    ap = argparse.ArgumentParser(description="run the tlspolicy integration tests")
    ap.add_argument("-k", dest="patterns", action="append", default=[],
                    help="only tests whose name contains this (unittest -k)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-test lines")
    ap.add_argument("--total-timeout", type=int, default=int(os.environ.get("TLSPOLICY_TEST_TIMEOUT", 1500)),
                    help="seconds for the whole run (default 1500)")
    opts = ap.parse_args()

    # a SIGTERM (make's, a CI's) unwinds normally, so atexit stops the processes
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    missing = harness.missing_prerequisites()
    if missing:
        for m in missing:
            print("run.py: %s" % m)
        if harness.CI:
            print("run.py: CI=true: a missing prerequisite is a failure")
            print("0 passed, 1 failed, 0 skipped")
            return 1
        print("run.py: SKIP: install the missing tools to run the integration tests")
        print("0 passed, 0 failed, 0 skipped")
        return SKIP

    print("run.py: build tree %s, source tree %s%s"
          % (harness.BUILDDIR, harness.SRCDIR, ", CI=true" if harness.CI else ""))
    loader = unittest.TestLoader()
    if opts.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in opts.patterns]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    watchdog(opts.total_timeout)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=1 if opts.quiet else 2,
                                     resultclass=CountingResult)
    try:
        result = runner.run(suite)
    finally:
        harness.close_all()
    for report in harness.sanitizer_reports:
        print("run.py: a sanitizer reported, in tlspolicyd's log of %s" % report, flush=True)
    if harness.sanitizer_reports:
        result.n_failed += 1
    print("%d passed, %d failed, %d skipped" % (result.n_passed, result.n_failed, result.n_skipped), flush=True)
    if result.n_failed:
        return 1
    if result.n_passed == 0:
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
