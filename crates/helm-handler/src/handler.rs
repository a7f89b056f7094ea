//! `HelmHandler`: componentkit's `Handler` for Helm releases.
