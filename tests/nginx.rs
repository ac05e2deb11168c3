//! The article's reverse-proxy setup, for real: Debian's nginx in front of the gateway with the
//! article's `location /pushgateway/ { proxy_pass http://localhost:9091/; }` (only the address
//! and port differ), and the gateway started as the article starts it, with
//! `--web.external-url=http://<nginx>/pushgateway/ --web.route-prefix=/`. Everything a user does
//! goes through nginx: push, scrape, the UI and its links, the API, delete, redirects.
//!
//! nginx missing is a failure, never a skip: `scripts/test` installs it (nginx-light).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{NotReady, Reply, Server, client, on_free_port, pushed_series, send, wait_ready};

const NGINX: &str = "/usr/sbin/nginx";
const LOCATION: &str = "/pushgateway/";
const GROUP: &str = "/metrics/job/article/instance/pi";
/// The article's metric, typed as the gauge it is.
const ARTICLE_PUSH: &str = "# TYPE some_metric gauge\nsome_metric 3.14\n";

/// A foreground, unprivileged-style nginx with its own prefix directory, killed when dropped.
struct Nginx {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx on loopback `port`, proxying the article's location to `upstream_port`; its logs
    /// if it exited before it answered.
    fn start(port: u16, upstream_port: u16) -> Result<Nginx, String> {
        assert!(
            Path::new(NGINX).is_file(),
            "{NGINX} is not installed; run ./scripts/test, which installs every peer the tests use"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), port, upstream_port)).expect("nginx.conf");
        let error_log = dir.path().join("error.log");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NGINX}: {e}"));
        let mut nginx = Nginx { child: Some(child), port, dir };
        nginx.wait_answering().map(|()| nginx)
    }

    fn wait_answering(&mut self) -> Result<(), String> {
        let client = client();
        let ready = self.url("/pushgateway/-/ready");
        let answers = || client.get(&ready).send().is_ok_and(|r| r.status().is_success());
        match wait_ready(self.child.as_mut().expect("running"), Duration::from_secs(20), answers) {
            Ok(()) => Ok(()),
            Err(NotReady::Exited(status)) => Err(format!("exit status {status}\n{}", self.logs())),
            Err(NotReady::TimedOut) => panic!("nginx did not pass /pushgateway/-/ready within 20 s:\n{}", self.logs()),
        }
    }

    /// The article's external URL: where users reach the gateway.
    fn external_url(&self) -> String {
        self.url(LOCATION)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Reply {
        send(&client(), method, &self.url(path), &[], body.as_bytes().to_vec())
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, "")
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("stderr:\n{}\nerror.log:\n{}", read("stderr"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal nginx.conf that needs no root and writes only under `dir`; the `location` block is
/// the article's, with the upstream on a free port instead of 9091.
fn config(dir: &Path, port: u16, upstream_port: u16) -> String {
    let temp = |name: &str| -> PathBuf { dir.join(name) };
    format!(
        "daemon off;
master_process off;
pid {pid};
error_log {error_log};
events {{}}
http {{
    access_log off;
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};
    server {{
        listen 127.0.0.1:{port};
        {location}
    }}
}}
",
        location = location_block(&format!("127.0.0.1:{upstream_port}")),
        pid = temp("nginx.pid").display(),
        error_log = temp("error.log").display(),
        body = temp("client_body").display(),
        proxy = temp("proxy").display(),
        fastcgi = temp("fastcgi").display(),
        uwsgi = temp("uwsgi").display(),
        scgi = temp("scgi").display(),
    )
}

/// The article's `location` block, proxying to `upstream` (`host:port`).
fn location_block(upstream: &str) -> String {
    format!("location {LOCATION} {{ proxy_pass http://{upstream}/; }}")
}

/// The article's deployment: nginx in front, the gateway told its external URL and the root
/// route prefix. nginx's port is chosen first, since the gateway's flag names it.
fn article_setup() -> (Server, Nginx) {
    on_free_port("nginx", |nginx_port| {
        let external = format!("--web.external-url=http://127.0.0.1:{nginx_port}{LOCATION}");
        // Route prefix "/" means routes at the root: readiness is at /-/ready.
        let gateway = Server::cronpush_at(&[&external, "--web.route-prefix=/"], "");
        Nginx::start(nginx_port, gateway.port).map(|nginx| (gateway, nginx))
    })
}

fn external_path(path: &str) -> String {
    format!("{}{}", LOCATION.trim_end_matches('/'), path)
}

#[test]
fn push_scrape_and_delete_through_nginx() {
    let (gateway, nginx) = article_setup();
    let group = external_path(GROUP);

    let put = nginx.request("PUT", &group, ARTICLE_PUSH);
    assert_eq!(put.status, 200, "PUT through nginx: {}\n{}", put.body, gateway.stderr());
    // The article's own curl: `--data-binary` is a POST.
    let post = nginx.request("POST", &group, "some_metric 2.71\n");
    assert_eq!(post.status, 200, "POST through nginx: {}", post.body);

    let scrape = nginx.get(&external_path("/metrics"));
    assert_eq!(scrape.status, 200, "scrape through nginx: {}", scrape.body);
    let series = pushed_series(&scrape.body);
    assert!(
        series.contains(&r#"some_metric{instance="pi",job="article"} 2.71"#.to_string()),
        "the pushed series is missing from the scrape through nginx: {series:#?}"
    );
    assert_eq!(series, gateway.pushed_series(), "nginx changed the scrape");

    let api = nginx.get(&external_path("/api/v1/metrics"));
    assert_eq!(api.status, 200, "API through nginx: {}", api.body);
    let json: serde_json::Value = serde_json::from_str(&api.body).expect("API answers JSON");
    let groups = json["data"].as_array().expect("data is the list of groups");
    assert!(
        groups.iter().any(|g| g["labels"]["job"] == "article" && g["labels"]["instance"] == "pi"),
        "the group is missing from /api/v1/metrics through nginx: {json:#}"
    );

    let delete = nginx.request("DELETE", &group, "");
    assert_eq!(delete.status, 202, "DELETE through nginx: {}", delete.body);
    let after = nginx.get(&external_path("/metrics"));
    assert_eq!(pushed_series(&after.body), Vec::<String>::new(), "the group survived its DELETE through nginx");
}

/// Every link and asset of the UI must stay under the external URL: a root-relative `/status`
/// would leave nginx's `/pushgateway/` location and land on whatever else the host serves.
#[test]
fn ui_through_nginx_links_under_the_external_url() {
    let (_gateway, nginx) = article_setup();
    assert_eq!(nginx.request("PUT", &external_path(GROUP), ARTICLE_PUSH).status, 200);

    let page = nginx.get(LOCATION);
    assert_eq!(page.status, 200, "UI through nginx: {}", page.body);
    let content_type = page.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "the UI is not HTML: {content_type}");
    assert!(page.body.contains("some_metric"), "the UI does not show the pushed group:\n{}", page.body);

    let links = links(&page.body);
    assert!(!links.is_empty(), "the UI has no links:\n{}", page.body);
    let mut broken = Vec::new();
    for link in &links {
        let target = resolve(&nginx.external_url(), link);
        if !target.starts_with(&nginx.url("/")) {
            continue; // another site, such as documentation
        }
        if !target.starts_with(&nginx.external_url()) {
            broken.push(format!("{link:?} resolves to {target}, outside the external URL"));
            continue;
        }
        let reply = send(&client(), "GET", &target, &[], Vec::new());
        if reply.status != 200 {
            broken.push(format!("{link:?} ({target}) answers {}", reply.status));
        }
    }
    assert!(broken.is_empty(), "the UI at {} has broken links:\n{}", nginx.external_url(), broken.join("\n"));
}

/// nginx answers `/pushgateway` itself (a location ending in `/` with `proxy_pass`); any
/// redirect the gateway issues must come back through nginx pointing under `/pushgateway/`.
#[test]
fn redirects_through_nginx_stay_under_the_external_url() {
    let (_gateway, nginx) = article_setup();
    let bare = nginx.get("/pushgateway");
    assert_eq!(bare.status, 301, "GET /pushgateway: {}", bare.body);
    assert_eq!(resolve(&nginx.url("/pushgateway"), bare.header("location").unwrap_or_default()), nginx.external_url());

    // Paths the gateway cleans with a redirect; nginx may clean some itself first.
    for path in ["/pushgateway//metrics", "/pushgateway/status/", "/pushgateway/metrics/job/a/./b/../instance/pi"] {
        let reply = nginx.get(path);
        if (300..400).contains(&reply.status) {
            let location = reply.header("location").unwrap_or_default();
            let target = resolve(&nginx.url(path), location);
            assert!(
                target.starts_with(&nginx.external_url()),
                "GET {path} through nginx redirects to {location:?} ({target}), outside {}",
                nginx.external_url()
            );
        }
    }
}

/// The values of every `href="…"` and `src="…"` in a page.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            rest = &rest[at + attribute.len()..];
            let end = rest.find('"').expect("a closed attribute");
            found.push(rest[..end].replace("&amp;", "&"));
            rest = &rest[end..];
        }
    }
    found
}

/// `link` resolved against the page at `base`, as a browser does.
fn resolve(base: &str, link: &str) -> String {
    reqwest::Url::parse(base).expect("base URL").join(link).expect("a valid link").to_string()
}

/// The snippet users copy is the configuration these tests run, up to the upstream's address.
#[test]
fn documented_snippet_has_the_tested_location() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/gateway/nginx.conf");
    let snippet = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let uncommented: String =
        snippet.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    assert!(
        words(&uncommented).contains(&location_block("localhost:9091")),
        "{} lacks the article's block {:?}",
        path.display(),
        location_block("localhost:9091")
    );
}
