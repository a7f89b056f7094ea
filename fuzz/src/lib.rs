//! Fuzz targets of helm-handler's parsers of untrusted input (see fuzz/README in the
//! project README's "Fuzzing" section). The bodies live in these modules, shared with the
//! ordinary tests that replay `fuzz/seeds/` and `fuzz/regressions/`.

pub mod chart_source_targets;
pub mod helm_handler_targets;
pub mod names;
