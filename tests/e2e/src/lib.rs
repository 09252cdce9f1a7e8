//! End-to-end tests of hush against a real kube-apiserver + etcd.
//!
//! The tests live in `tests/`; they are `#[ignore]`d so that a plain `cargo test` passes without
//! a cluster. `scripts/test.sh` starts an environment with `scripts/kube-testenv.sh` and runs them
//! with `cargo test -p hush-e2e -- --include-ignored`; see `docs/testing.md`.
