//! nginx serving a helm repo index.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::{Chart, HttpRepo, HttpRepoOptions};

#[test]
fn smoke() {
    let src = tempfile::tempdir().unwrap();
    Chart::new("demo", "1.0.0").package(src.path()).unwrap();
    for opts in [
        HttpRepoOptions::default(),
        HttpRepoOptions {
            basic_auth: true,
            tls: true,
            sub_path: Some("a/b".into()),
            bind_ip: Some("127.0.0.2".parse().unwrap()),
            index_url: Some("{origin}/x".into()),
            extra_locations: Some("location /moved/ { return 302 {origin}/a/b/; }".into()),
        },
    ] {
        let repo = HttpRepo::start(src.path(), opts).unwrap();
        eprintln!("{repo:?}");
        let mut c = std::process::Command::new("curl");
        c.args(["-s", "-i", "-k", &format!("{}index.yaml", repo.url())]);
        if let (Some(u), Some(p)) = (repo.username(), repo.password()) {
            c.args(["-u", &format!("{u}:{p}")]);
        }
        let out = c.output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        std::process::Command::new("curl")
            .args(["-s", "-i", "-k", &format!("{}/moved/", repo.origin())])
            .status()
            .unwrap();
        eprintln!("{:?}", repo.access_log());
    }
}
