//! OCI registry chart source (oci-client).
