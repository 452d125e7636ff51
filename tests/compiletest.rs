//! Compile errors of the macros, with the messages users see (`tests/ui/**/*.stderr`).
//! Regenerate with `TRYBUILD=overwrite cargo test --test compiletest` and review every change.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/orchestrator/pass/*.rs");
    t.compile_fail("tests/ui/orchestrator/fail/*.rs");
    t.pass("tests/ui/activity/pass/*.rs");
    t.compile_fail("tests/ui/activity/fail/*.rs");
    t.pass("tests/ui/entity/pass/*.rs");
    t.compile_fail("tests/ui/entity/fail/*.rs");
}
