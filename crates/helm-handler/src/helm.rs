//! The release engine over the `helm` binary.
