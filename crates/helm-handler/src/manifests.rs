//! Reading multi-document Kubernetes YAML files (Components and Secrets) for the offline commands.
