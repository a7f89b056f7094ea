//! Credential resolution from Kubernetes Secrets (API or files), under namespace scoping.
