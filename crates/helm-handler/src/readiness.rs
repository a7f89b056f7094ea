//! Readiness of a release's objects: a pure function from observed objects to a verdict.
