//! The one classifier of kube-rs errors. Every crate that calls the Kubernetes API
//! categorises its failures here, so that the same answer (a 403, a 504, a reset
//! connection) is retried the same way wherever it comes from.

use crate::api::ApiError;
use crate::handler::ErrorCategory;

/// The category of a kube-rs error:
///
/// | error | category |
/// |---|---|
/// | HTTP 401, 403 | `Auth` |
/// | HTTP 404 | `NotFound` |
/// | HTTP 409 | `Conflict` |
/// | HTTP 400, 422 | `Config` |
/// | HTTP 408, 504 | `Timeout` |
/// | HTTP 429, other 5xx | `Network` |
/// | transport (`HyperError`, `Service`, `ReadEvents`) | `Network` |
/// | `Auth` (credentials of the client) | `Auth` |
/// | anything else | `Internal` |
pub fn kube_category(e: &kube::Error) -> ErrorCategory {
    match e {
        kube::Error::Api(status) => match status.code {
            401 | 403 => ErrorCategory::Auth,
            404 => ErrorCategory::NotFound,
            409 => ErrorCategory::Conflict,
            400 | 422 => ErrorCategory::Config,
            408 | 504 => ErrorCategory::Timeout,
            429 | 500..=599 => ErrorCategory::Network,
            _ => ErrorCategory::Internal,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            ErrorCategory::Network
        }
        kube::Error::Auth(_) => ErrorCategory::Auth,
        _ => ErrorCategory::Internal,
    }
}

/// Maps a kube error to an [`ApiError`] by HTTP status; its category is
/// [`kube_category`]'s.
pub fn map_kube_error(e: kube::Error) -> ApiError {
    let category = kube_category(&e);
    match e {
        kube::Error::Api(status) => {
            let msg = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                409 => ApiError::Conflict(msg),
                404 => ApiError::NotFound(msg),
                403 => ApiError::Forbidden(msg),
                400 | 422 => ApiError::Rejected(msg),
                _ => ApiError::Other(category, format!("HTTP {}: {msg}", status.code)),
            }
        }
        other => ApiError::Other(category, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorCategory as C;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("refused", "Reason").with_code(code),
        ))
    }

    #[test]
    fn kube_errors_have_one_category_each() {
        let statuses = [
            (401, C::Auth),
            (403, C::Auth),
            (404, C::NotFound),
            (409, C::Conflict),
            (400, C::Config),
            (422, C::Config),
            (408, C::Timeout),
            (504, C::Timeout),
            (429, C::Network),
            (500, C::Network),
            (502, C::Network),
            (503, C::Network),
            (405, C::Internal),
            (410, C::Internal),
        ];
        for (code, category) in statuses {
            assert_eq!(kube_category(&api(code)), category, "HTTP {code}");
            // The Component API's errors agree with the classifier.
            assert_eq!(
                map_kube_error(api(code)).category(),
                category,
                "HTTP {code}"
            );
        }
        let others = [
            (kube::Error::Service("connection reset".into()), C::Network),
            (
                kube::Error::ReadEvents(std::io::Error::other("broken pipe")),
                C::Network,
            ),
            (kube::Error::LinesCodecMaxLineLengthExceeded, C::Internal),
            (kube::Error::TlsRequired, C::Internal),
        ];
        for (e, category) in others {
            let text = e.to_string();
            assert_eq!(kube_category(&e), category, "{text}");
            assert_eq!(map_kube_error(e).category(), category, "{text}");
        }
    }

    #[test]
    fn the_component_api_keeps_its_messages() {
        assert_eq!(map_kube_error(api(403)).to_string(), "rejected: refused");
        assert_eq!(map_kube_error(api(422)).to_string(), "rejected: refused");
        assert_eq!(map_kube_error(api(409)).to_string(), "conflict: refused");
        assert_eq!(map_kube_error(api(404)).to_string(), "not found: refused");
        assert_eq!(
            map_kube_error(api(504)).to_string(),
            "API error: HTTP 504: refused"
        );
    }
}
