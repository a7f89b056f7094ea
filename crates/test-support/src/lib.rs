//! Real components for tests: a `docker-registry`, the `helm` binary, an nginx chart repository.
