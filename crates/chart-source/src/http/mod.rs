//! Classic HTTP chart repository source (index.yaml + .tgz).
