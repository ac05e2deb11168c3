//! Which handler a request reaches: the reference's route table, as a pure function of the
//! method and the percent-decoded path, so that its edge cases are tested without sockets.
//!
//! The reference routes on the decoded path (`%2F` separates labels) and first redirects
//! paths with `//`, `/./` or `/../` to their clean form, as Go's ServeMux does.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Push(PushPath),
    Scrape,
    Healthy,
    Ready,
    Quit,
    ApiStatus,
    ApiMetrics,
    ApiWipe,
    ApiOptions,
    ApiCronJobs,
    /// A CronJob's run history: `/api/v1/cronjobs/<namespace>/<cronjob>/runs`.
    ApiCronJobRuns {
        namespace: String,
        cronjob: String,
    },
    /// The last log lines of a run's failed containers, delivered by `cronpush sidecar`:
    /// `/api/v1/runs/logs/job/<job>{/<labels>}`, the group named as in a push URL.
    ApiRunLogs(PushPath),
    UiGroups,
    UiCronJobs,
    /// A CronJob's page: `/cronjobs/<namespace>/<cronjob>`.
    UiCronJob {
        namespace: String,
        cronjob: String,
    },
    UiStatus,
    /// An embedded asset under `/static/`, by file name.
    UiAsset(String),
}

/// The parts of a push URL, percent-decoded: the job segment (base64url when the route was
/// `job@base64`) and the rest (`""` or `/name/value/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPath {
    pub job: String,
    pub job_is_base64: bool,
    pub labels: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing {
    Handle(Route),
    /// `OPTIONS` on a known path: 200 with the methods it takes.
    Options {
        allow: &'static str,
    },
    MethodNotAllowed {
        allow: &'static str,
    },
    Redirect(String),
    NotFound,
}

pub struct RouteTable<'a> {
    pub prefix: &'a str,
    pub telemetry_path: &'a str,
    pub admin_api: bool,
}

impl RouteTable<'_> {
    pub fn route(&self, method: &str, path: &str) -> Routing {
        let clean = clean_path(path);
        if clean != path {
            return Routing::Redirect(clean);
        }
        let rest = if self.prefix.is_empty() {
            path
        } else if path == self.prefix {
            return Routing::Redirect(format!("{}/", self.prefix));
        } else {
            match path.strip_prefix(self.prefix).filter(|r| r.starts_with('/')) {
                Some(rest) => rest,
                None => return Routing::NotFound,
            }
        };
        const READ: &[&str] = &["GET", "HEAD"];
        let (route, methods, allow): (Route, &[&str], &'static str) = if rest == self.telemetry_path {
            (Route::Scrape, READ, "GET, HEAD, OPTIONS")
        } else if let Some(push) = push_route(rest) {
            (push, &["PUT", "POST", "DELETE"], "DELETE, OPTIONS, POST, PUT")
        } else if let Some(api) = rest.strip_prefix("/api/v1/") {
            if method == "OPTIONS" {
                return Routing::Handle(Route::ApiOptions);
            }
            match api {
                "status" => (Route::ApiStatus, READ, "GET, HEAD, OPTIONS"),
                "metrics" => (Route::ApiMetrics, READ, "GET, HEAD, OPTIONS"),
                "cronjobs" => (Route::ApiCronJobs, READ, "GET, HEAD, OPTIONS"),
                // Without the flag the route does not exist at all, as in the reference.
                "admin/wipe" if self.admin_api => (Route::ApiWipe, &["PUT"], "OPTIONS, PUT"),
                _ => match (cronjob_runs_route(api), api.strip_prefix("runs/logs").and_then(group_path)) {
                    (Some(route), _) => (route, READ, "GET, HEAD, OPTIONS"),
                    // PUT: the lines replace what the run's end held, so a delivery sent twice
                    // keeps them once.
                    (None, Some(path)) => (Route::ApiRunLogs(path), &["PUT"], "OPTIONS, PUT"),
                    (None, None) => return Routing::NotFound,
                },
            }
        } else if let Some(name) = rest.strip_prefix("/static/").filter(|n| !n.is_empty() && !n.contains('/')) {
            (Route::UiAsset(name.into()), READ, "GET, HEAD, OPTIONS")
        } else {
            match rest {
                "/-/healthy" => (Route::Healthy, READ, "GET, HEAD, OPTIONS"),
                "/-/ready" => (Route::Ready, READ, "GET, HEAD, OPTIONS"),
                "/-/quit" => (Route::Quit, &["PUT", "POST"], "OPTIONS, POST, PUT"),
                "/" => (Route::UiGroups, READ, "GET, HEAD, OPTIONS"),
                "/cronjobs" => (Route::UiCronJobs, READ, "GET, HEAD, OPTIONS"),
                "/status" => (Route::UiStatus, READ, "GET, HEAD, OPTIONS"),
                _ => match cronjob_page_route(rest) {
                    Some(route) => (route, READ, "GET, HEAD, OPTIONS"),
                    None => return Routing::NotFound,
                },
            }
        };
        if methods.contains(&method) {
            Routing::Handle(route)
        } else if method == "OPTIONS" {
            Routing::Options { allow }
        } else {
            Routing::MethodNotAllowed { allow }
        }
    }
}

/// `cronjobs/<namespace>/<cronjob>/runs` under `/api/v1/`.
fn cronjob_runs_route(api: &str) -> Option<Route> {
    let mut parts = api.strip_prefix("cronjobs/")?.split('/');
    let (namespace, cronjob) = (parts.next()?, parts.next()?);
    let runs = parts.next() == Some("runs") && parts.next().is_none();
    (runs && !namespace.is_empty() && !cronjob.is_empty())
        .then(|| Route::ApiCronJobRuns { namespace: namespace.into(), cronjob: cronjob.into() })
}

/// `/cronjobs/<namespace>/<cronjob>`: Kubernetes names hold no `/`, so the namespace is one
/// segment and the CronJob the rest.
fn cronjob_page_route(rest: &str) -> Option<Route> {
    let (namespace, cronjob) = rest.strip_prefix("/cronjobs/")?.split_once('/')?;
    (!namespace.is_empty() && !cronjob.is_empty() && !cronjob.ends_with('/'))
        .then(|| Route::UiCronJob { namespace: namespace.into(), cronjob: cronjob.into() })
}

/// `/metrics/job/<job>{/<labels>}` and `/metrics/job@base64/<job>{/<labels>}`.
fn push_route(rest: &str) -> Option<Route> {
    group_path(rest.strip_prefix("/metrics")?).map(Route::Push)
}

/// `/job/<job>{/<labels>}` or `/job@base64/<job>{/<labels>}`: a group as push URLs name it.
fn group_path(rest: &str) -> Option<PushPath> {
    let (tail, job_is_base64) = match rest.strip_prefix("/job/") {
        Some(tail) => (tail, false),
        None => (rest.strip_prefix("/job@base64/")?, true),
    };
    let (job, labels) = tail.find('/').map_or((tail, ""), |i| (&tail[..i], &tail[i..]));
    (!job.is_empty()).then(|| PushPath { job: job.into(), job_is_base64, labels: labels.into() })
}

/// Go's `path.Clean` as ServeMux applies it: no empty, `.` or `..` segments; a trailing slash
/// is kept.
pub fn clean_path(path: &str) -> String {
    if !path.starts_with('/') {
        return clean_path(&format!("/{path}"));
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut clean = format!("/{}", segments.join("/"));
    if path.ends_with('/') && clean != "/" {
        clean.push('/');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable<'static> {
        RouteTable { prefix: "", telemetry_path: "/metrics", admin_api: false }
    }

    fn push(job: &str, b64: bool, labels: &str) -> Routing {
        Routing::Handle(Route::Push(PushPath { job: job.into(), job_is_base64: b64, labels: labels.into() }))
    }

    #[test]
    fn routes_like_the_reference() {
        let t = table();
        assert_eq!(t.route("PUT", "/metrics/job/j"), push("j", false, ""));
        assert_eq!(t.route("POST", "/metrics/job/j/a/b"), push("j", false, "/a/b"));
        assert_eq!(t.route("DELETE", "/metrics/job@base64/Zm9v/a@base64/YQ"), push("Zm9v", true, "/a@base64/YQ"));
        assert_eq!(t.route("PUT", "/metrics/job/j/"), push("j", false, "/"));
        assert_eq!(t.route("GET", "/metrics/job/j"), Routing::MethodNotAllowed { allow: "DELETE, OPTIONS, POST, PUT" });
        assert_eq!(t.route("OPTIONS", "/metrics/job/j"), Routing::Options { allow: "DELETE, OPTIONS, POST, PUT" });
        assert_eq!(t.route("GET", "/metrics"), Routing::Handle(Route::Scrape));
        assert_eq!(t.route("POST", "/metrics"), Routing::MethodNotAllowed { allow: "GET, HEAD, OPTIONS" });
        assert_eq!(
            t.route("PUT", "/metrics/job/j/first//second/foo"),
            Routing::Redirect("/metrics/job/j/first/second/foo".into())
        );
        assert_eq!(t.route("PUT", "/metrics/job/"), Routing::NotFound);
        assert_eq!(t.route("PUT", "/api/v1/admin/wipe"), Routing::NotFound);
        assert_eq!(t.route("OPTIONS", "/api/v1/anything"), Routing::Handle(Route::ApiOptions));
        assert_eq!(t.route("GET", "/nothing"), Routing::NotFound);
        assert_eq!(t.route("GET", "/-/quit"), Routing::MethodNotAllowed { allow: "OPTIONS, POST, PUT" });
    }

    #[test]
    fn honours_the_route_prefix_and_telemetry_path() {
        let t = RouteTable { prefix: "/pg", telemetry_path: "/prom", admin_api: true };
        assert_eq!(t.route("GET", "/pg/prom"), Routing::Handle(Route::Scrape));
        assert_eq!(t.route("GET", "/pg/-/healthy"), Routing::Handle(Route::Healthy));
        assert_eq!(t.route("PUT", "/pg/metrics/job/x"), push("x", false, ""));
        assert_eq!(t.route("PUT", "/pg/api/v1/admin/wipe"), Routing::Handle(Route::ApiWipe));
        assert_eq!(t.route("GET", "/pg/"), Routing::Handle(Route::UiGroups));
        assert_eq!(t.route("GET", "/pg/cronjobs"), Routing::Handle(Route::UiCronJobs));
        assert_eq!(t.route("GET", "/pg/api/v1/cronjobs"), Routing::Handle(Route::ApiCronJobs));
        let runs = Route::ApiCronJobRuns { namespace: "batch".into(), cronjob: "backup".into() };
        assert_eq!(t.route("GET", "/pg/api/v1/cronjobs/batch/backup/runs"), Routing::Handle(runs));
        for wrong in
            ["/pg/api/v1/cronjobs/batch/runs", "/pg/api/v1/cronjobs/batch/backup/runs/x", "/pg/api/v1/cronjobs/b/runs/"]
        {
            assert_eq!(t.route("GET", wrong), Routing::NotFound, "{wrong}");
        }
        let page = Route::UiCronJob { namespace: "batch".into(), cronjob: "backup".into() };
        assert_eq!(t.route("GET", "/pg/cronjobs/batch/backup"), Routing::Handle(page));
        assert_eq!(t.route("GET", "/pg/cronjobs/batch"), Routing::NotFound);
        assert_eq!(t.route("GET", "/pg/cronjobs/batch/backup/"), Routing::NotFound);
        assert_eq!(t.route("GET", "/pg/static/cronpush.css"), Routing::Handle(Route::UiAsset("cronpush.css".into())));
        assert_eq!(t.route("GET", "/pg/static/"), Routing::NotFound);
        assert_eq!(t.route("GET", "/pg"), Routing::Redirect("/pg/".into()));
        for outside in ["/metrics", "/prom", "/-/healthy", "/api/v1/status", "/pgx/prom"] {
            assert_eq!(t.route("GET", outside), Routing::NotFound, "{outside}");
        }
        assert_eq!(t.route("GET", "/pg/metrics"), Routing::NotFound);
    }

    #[test]
    fn run_logs_name_their_group_as_a_push_does() {
        let t = RouteTable { prefix: "/pg", telemetry_path: "/metrics", admin_api: false };
        let logs = |job: &str, b64: bool, labels: &str| {
            Routing::Handle(Route::ApiRunLogs(PushPath { job: job.into(), job_is_base64: b64, labels: labels.into() }))
        };
        let path = "/pg/api/v1/runs/logs/job/cronpush/namespace/batch/cronjob/backup";
        assert_eq!(t.route("PUT", path), logs("cronpush", false, "/namespace/batch/cronjob/backup"));
        assert_eq!(
            t.route("PUT", "/pg/api/v1/runs/logs/job@base64/YS9i/cluster@base64/=/namespace/n/cronjob/c"),
            logs("YS9i", true, "/cluster@base64/=/namespace/n/cronjob/c")
        );
        assert_eq!(t.route("POST", path), Routing::MethodNotAllowed { allow: "OPTIONS, PUT" });
        assert_eq!(t.route("GET", path), Routing::MethodNotAllowed { allow: "OPTIONS, PUT" });
        for wrong in [
            "/pg/api/v1/runs/logs",
            "/pg/api/v1/runs/logs/job/",
            "/pg/api/v1/runs/logsx/job/j",
            "/api/v1/runs/logs/job/j",
        ] {
            assert_eq!(t.route("PUT", wrong), Routing::NotFound, "{wrong}");
        }
    }

    #[test]
    fn cleans_like_go() {
        assert_eq!(clean_path("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("/.."), "/");
    }
}
