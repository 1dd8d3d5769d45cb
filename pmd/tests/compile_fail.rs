//! Misuse of the pmd API that must not compile: each file under `tests/ui/` is a program that
//! would be undefined behaviour if it built, and its `.stderr` is the error rustc gives instead.
//! (`TRYBUILD=overwrite cargo test -p pmd --test compile_fail` regenerates the expectations
//! after a deliberate change of wording.)

#[test]
fn misuse_does_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
