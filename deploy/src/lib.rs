//! `valet-deploy` holds no runtime code. It exists so that `cargo test` checks the deployment
//! files beside it: `tests/manifests.rs` validates every manifest in `knative/` against the
//! Knative CRD schemas and the rules the schemas do not cover, and checks the `Dockerfile`.
