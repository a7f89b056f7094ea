//! nginx serving a directory indexed by `helm repo index`, requested with reqwest (rustls).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, TcpStream};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use reqwest::redirect::Policy;
use test_support::{Chart, HttpRepo, HttpRepoOptions, helm_command};

/// A client trusting the repo's test CA (if any), not following redirects, without proxy.
fn client(repo: &HttpRepo) -> Client {
    let mut builder = Client::builder().no_proxy().redirect(Policy::none());
    if let Some(pem) = repo.ca_pem() {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// A directory with one packaged chart.
fn charts_dir(name: &str, version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    Chart::new(name, version).package(dir.path()).unwrap();
    dir
}

#[test]
fn serves_index_with_etag_and_charts() {
    let src = charts_dir("web", "1.0.0");
    let repo = HttpRepo::start(src.path(), HttpRepoOptions::default()).unwrap();
    assert_eq!(repo.url(), format!("http://127.0.0.1:{}/", repo.port()));
    assert_eq!(repo.host(), format!("127.0.0.1:{}", repo.port()));
    let c = client(&repo);

    let resp = c.get(format!("{}index.yaml", repo.url())).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let index = resp.text().unwrap();
    assert!(
        index.contains("web:") && index.contains("- web-1.0.0.tgz"),
        "{index}"
    );

    let again = c
        .get(format!("{}index.yaml", repo.url()))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let chart = c
        .get(format!("{}web-1.0.0.tgz", repo.url()))
        .send()
        .unwrap();
    assert_eq!(chart.status(), StatusCode::OK);
    let body = chart.bytes().unwrap();
    assert_eq!(
        body.as_ref(),
        std::fs::read(repo.dir().join("web-1.0.0.tgz")).unwrap()
    );
    assert_eq!(
        c.get(format!("{}nope.tgz", repo.url()))
            .send()
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let log = repo.access_log();
    let seen: Vec<_> = log
        .iter()
        .map(|e| (e.method.as_str(), e.path.as_str(), e.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/index.yaml", 200),
            ("GET", "/index.yaml", 304),
            ("GET", "/web-1.0.0.tgz", 200),
            ("GET", "/nope.tgz", 404)
        ]
    );
    assert!(log.iter().all(|e| !e.had_authorization));
}

#[test]
fn basic_auth_refuses_requests_without_credentials() {
    let src = charts_dir("web", "1.0.0");
    let options = HttpRepoOptions {
        basic_auth: true,
        ..Default::default()
    };
    let repo = HttpRepo::start(src.path(), options).unwrap();
    let (user, password) = (repo.username().unwrap(), repo.password().unwrap());
    assert!(
        !format!("{repo:?}").contains(password),
        "Debug shows the password"
    );
    let c = client(&repo);
    let url = format!("{}index.yaml", repo.url());

    let anonymous = c.get(&url).send().unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        c.get(&url)
            .basic_auth(user, Some("wrong"))
            .send()
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        c.get(&url)
            .basic_auth(user, Some(password))
            .send()
            .unwrap()
            .status(),
        StatusCode::OK
    );

    let flags: Vec<_> = repo
        .access_log()
        .iter()
        .map(|e| (e.status, e.had_authorization))
        .collect();
    assert_eq!(flags, [(401, false), (401, true), (200, true)]);
    let raw = std::fs::read_to_string(repo.access_log_path()).unwrap();
    assert!(
        !raw.contains(password) && !raw.contains("Basic "),
        "access log holds credentials"
    );

    // The real helm can use it too.
    let home = tempfile::tempdir().unwrap();
    let out = helm_command(home.path())
        .args([
            "pull",
            "web",
            "--repo",
            &repo.url(),
            "--username",
            user,
            "--password",
            password,
            "-d",
        ])
        .arg(home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.path().join("web-1.0.0.tgz").is_file());
}

#[test]
fn tls_on_another_loopback_address_under_a_sub_path() {
    let src = charts_dir("web", "2.0.0");
    let options = HttpRepoOptions {
        tls: true,
        sub_path: Some("/org/charts/".into()),
        bind_ip: Some(Ipv4Addr::new(127, 0, 0, 2)),
        ..Default::default()
    };
    let repo = HttpRepo::start(src.path(), options).unwrap();
    assert_eq!(
        repo.url(),
        format!("https://127.0.0.2:{}/org/charts/", repo.port())
    );
    assert!(repo.dir().ends_with("org/charts"));
    assert!(
        TcpStream::connect(("127.0.0.1", repo.port())).is_err(),
        "listens on 127.0.0.2 only"
    );

    let untrusting = Client::builder().no_proxy().build().unwrap();
    assert!(
        untrusting
            .get(format!("{}index.yaml", repo.url()))
            .send()
            .is_err()
    );

    let c = client(&repo);
    let index = c.get(format!("{}index.yaml", repo.url())).send().unwrap();
    assert_eq!(index.status(), StatusCode::OK);
    assert!(index.text().unwrap().contains("web-2.0.0.tgz"));
    let outside = c
        .get(format!("{}/index.yaml", repo.origin()))
        .send()
        .unwrap();
    assert_eq!(outside.status(), StatusCode::NOT_FOUND);
}

#[test]
fn absolute_index_urls_redirects_and_reindex() {
    let src = charts_dir("web", "1.0.0");
    let options = HttpRepoOptions {
        index_url: Some("{origin}/files".into()),
        extra_locations: Some("location /moved/ { return 302 {origin}/; }".into()),
        ..Default::default()
    };
    let mut repo = HttpRepo::start(src.path(), options).unwrap();
    let c = client(&repo);
    let index = c
        .get(format!("{}index.yaml", repo.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        index.contains(&format!("- {}/files/web-1.0.0.tgz", repo.origin())),
        "{index}"
    );

    let moved = c
        .get(format!("{}moved/index.yaml", repo.url()))
        .send()
        .unwrap();
    assert_eq!(moved.status(), StatusCode::FOUND);
    assert_eq!(moved.headers()["location"].to_str().unwrap(), repo.url());

    Chart::new("api", "0.3.0").package(repo.dir()).unwrap();
    repo.reindex().unwrap();
    let index = c
        .get(format!("{}index.yaml", repo.url()))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        index.contains("api-0.3.0.tgz") && index.contains("web-1.0.0.tgz"),
        "{index}"
    );

    let port = repo.port();
    repo.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
