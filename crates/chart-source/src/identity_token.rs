//! Docker's `identitytoken`: a *refresh token* for the registry's token service, not a
//! bearer token for the registry (Azure Container Registry's `az acr login` writes one).
//! Like docker, containerd and oras-go, it is exchanged for an access token with an OAuth2
//! request to the token service the registry names in its `WWW-Authenticate` challenge:
//! `POST <realm>` with `grant_type=refresh_token`, `refresh_token`, `service`, `scope`,
//! `client_id`. The decisions (which challenge, which form, which answer) are pure
//! functions; [`exchange`] carries them out.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, WWW_AUTHENTICATE};

use crate::credentials::SecretString;
use crate::error::{Error, Result};

/// The client id sent to token services (docker sends `docker`, oras-go `oras-go`).
pub const CLIENT_ID: &str = "helm-handler";

/// The token service a registry's Bearer challenge names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenService {
    pub realm: String,
    pub service: Option<String>,
}

/// The Bearer challenge of a `WWW-Authenticate` header (parsed with `http-auth`, the parser
/// oci-client uses), or `None` when the registry asks for no token (e.g. Basic only).
pub fn token_service(www_authenticate: &str) -> Option<TokenService> {
    let challenges = http_auth::parse_challenges(www_authenticate).ok()?;
    let bearer = challenges
        .into_iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))?;
    let param = |name: &str| {
        bearer
            .params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| {
                let mut out = String::new();
                v.append_unescaped(&mut out);
                out
            })
    };
    Some(TokenService {
        realm: param("realm").filter(|r| !r.is_empty())?,
        service: param("service").filter(|s| !s.is_empty()),
    })
}

/// The pull scope of a repository, as the token service expects it.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The `application/x-www-form-urlencoded` body of the refresh-token grant.
pub fn refresh_form(service: &TokenService, scope: &str, refresh_token: &SecretString) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "refresh_token");
    if let Some(s) = &service.service {
        form.append_pair("service", s);
    }
    form.append_pair("scope", scope);
    form.append_pair("client_id", CLIENT_ID);
    form.append_pair("refresh_token", refresh_token.expose());
    form.finish()
}

/// The access token of a token service's answer (`access_token`, else `token`).
pub fn access_token(body: &[u8]) -> Result<SecretString, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_string())?;
    ["access_token", "token"]
        .iter()
        .find_map(|k| json.get(k).and_then(serde_json::Value::as_str))
        .filter(|t| !t.is_empty())
        .map(SecretString::new)
        .ok_or_else(|| "the answer holds no `access_token`".to_string())
}

/// Whether the refresh token may be sent to `realm`: over HTTPS, or over plain HTTP only to
/// a registry that is itself plain HTTP (`plainHTTP: true`).
pub fn realm_allowed(realm: &url::Url, plain_http: bool) -> bool {
    realm.scheme() == "https" || (plain_http && realm.scheme() == "http")
}

/// Exchanges `refresh_token` for an access token to pull `repository` from the registry at
/// `base_url` (`https://host[:port]`): one `GET /v2/` for the challenge, one `POST` to the
/// token service. `Ok(None)` when the registry asks for no token at all.
pub async fn exchange(
    client: &reqwest::Client,
    base_url: &str,
    plain_http: bool,
    repository: &str,
    refresh_token: &SecretString,
    target: &str,
) -> Result<Option<SecretString>> {
    let auth_error = |message: String| Error::Auth {
        target: target.to_string(),
        message,
    };
    let probe = client
        .get(format!("{base_url}/v2/"))
        .send()
        .await
        .map_err(|e| crate::http::client::classify(&e, target))?;
    if probe.status().is_success() {
        return Ok(None);
    }
    let challenge = probe
        .headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(token_service)
        .ok_or_else(|| {
            auth_error(format!(
                "the registry answered {} without a Bearer challenge: it has no token service \
                 to exchange the identity token with (use username + password)",
                probe.status()
            ))
        })?;
    let realm = url::Url::parse(&challenge.realm).map_err(|e| {
        auth_error(format!(
            "the registry's token service `{}` is not a URL: {e}",
            challenge.realm
        ))
    })?;
    if !realm_allowed(&realm, plain_http) {
        return Err(auth_error(format!(
            "the registry's token service `{realm}` is not HTTPS: the identity token is not sent"
        )));
    }
    let answer = client
        .post(realm.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(refresh_form(
            &challenge,
            &pull_scope(repository),
            refresh_token,
        ))
        .send()
        .await
        .map_err(|e| crate::http::client::classify(&e, target))?;
    let status = answer.status();
    let body = answer
        .bytes()
        .await
        .map_err(|e| crate::http::client::classify(&e, target))?;
    match status {
        s if s.is_success() => access_token(&body)
            .map(Some)
            .map_err(|m| auth_error(format!("token service `{realm}`: {m}"))),
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Err(auth_error(format!(
                "the token service `{realm}` refused the identity token (HTTP {status})"
            )))
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => Err(Error::Network {
            target: target.to_string(),
            message: format!("token service `{realm}` answered HTTP {status}"),
        }),
        _ => Err(auth_error(format!(
            "token service `{realm}` answered HTTP {status}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        type Want<'a> = Option<(&'a str, Option<&'a str>)>;
        let table: &[(&str, Want)] = &[
            (
                r#"Bearer realm="https://acr.example.io/oauth2/token",service="acr.example.io""#,
                Some((
                    "https://acr.example.io/oauth2/token",
                    Some("acr.example.io"),
                )),
            ),
            (
                r#"bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull""#,
                Some(("https://auth.docker.io/token", Some("registry.docker.io"))),
            ),
            (
                r#"Basic realm="registry", Bearer realm="https://t.example/token""#,
                Some(("https://t.example/token", None)),
            ),
            (r#"Basic realm="test-registry""#, None),
            (r#"Bearer service="x""#, None),
            ("", None),
        ];
        for (header, want) in table {
            let got = token_service(header);
            let want = want.map(|(realm, service)| TokenService {
                realm: realm.to_string(),
                service: service.map(str::to_string),
            });
            assert_eq!(got, want, "{header}");
        }
    }

    #[test]
    fn the_refresh_grant_form() {
        let service = TokenService {
            realm: "https://acr.example.io/oauth2/token".into(),
            service: Some("acr.example.io".into()),
        };
        let form = refresh_form(
            &service,
            &pull_scope("team/charts/app"),
            &SecretString::new("r3fresh+/="),
        );
        assert_eq!(
            form,
            "grant_type=refresh_token&service=acr.example.io\
             &scope=repository%3Ateam%2Fcharts%2Fapp%3Apull&client_id=helm-handler\
             &refresh_token=r3fresh%2B%2F%3D"
        );
    }

    #[test]
    fn token_answers() {
        assert_eq!(
            access_token(br#"{"access_token":"a","expires_in":300}"#)
                .unwrap()
                .expose(),
            "a"
        );
        assert_eq!(access_token(br#"{"token":"t"}"#).unwrap().expose(), "t");
        assert!(access_token(br#"{"access_token":""}"#).is_err());
        assert!(access_token(b"<html>").is_err());
    }

    #[test]
    fn the_refresh_token_goes_to_https_token_services_only() {
        let https = url::Url::parse("https://t.example/token").unwrap();
        let http = url::Url::parse("http://t.example/token").unwrap();
        assert!(realm_allowed(&https, false));
        assert!(!realm_allowed(&http, false));
        assert!(realm_allowed(&http, true));
    }
}
