//! Handler configuration: `HelmConfig` parsed from a Component's `spec.config`.
