//! The web UI in a real browser: Debian's Chromium, headless, driven through Debian's
//! chromedriver over WebDriver (fantoccini), against the real gateway after real pushes. The
//! CronJob board is fed by real CronJob runs: the kubelet emulation of tests/support/kubelet.rs
//! with the real webhook, `cronpush start` and `cronpush sidecar`.
//!
//! Chromium starts as the machine notes prescribe for a closed network and root: no sandbox,
//! no GPU, no background networking, a fresh profile. With `CRONPUSH_SCREENSHOTS=<dir>` the
//! board's screenshots are written there (the README's come from this test); otherwise into
//! cargo's temporary directory.
//!
//! Why on the fake: the board needs runs in chosen states (a slot ten minutes ago, a relay that
//! is gone), and the browser tests stay fast.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use support::kubelet::{CronJobRun, MAIN, PodContainers as _, Run, run_main, run_start, run_to_end, stop_sidecar};
use support::{Server, free_port};

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// One Chromium, driven synchronously: each call runs one WebDriver command to completion, so
/// that the tests can push with the blocking client between commands.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        Browser::with_javascript(true)
    }

    fn with_javascript(javascript: bool) -> Browser {
        let port = free_port();
        let mut driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) runs");
        let profile = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let webdriver = format!("http://127.0.0.1:{port}");
        let ready = support::wait_ready(&mut driver, Duration::from_secs(20), || {
            support::client().get(format!("{webdriver}/status")).send().is_ok_and(|r| r.status().is_success())
        });
        assert!(ready.is_ok(), "chromedriver did not come up on {webdriver}");
        let mut options = json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.path().display())],
        });
        if !javascript {
            options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        // Dialogs stay open for the test to accept, dismiss or, for injected markup, find.
        capabilities.insert("unhandledPromptBehavior".into(), json!("ignore"));
        let client = runtime
            .block_on(ClientBuilder::new(HttpConnector::new()).capabilities(capabilities).connect(&webdriver))
            .expect("a Chromium session");
        Browser { runtime, client: Some(client), driver, _profile: profile }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap_or_else(|e| panic!("loading {url}: {e}"));
    }

    /// What the page shows for the first element matching `css`, as a person reads it.
    fn text(&self, css: &str) -> String {
        self.texts(css).into_iter().next().unwrap_or_else(|| panic!("nothing matches {css}"))
    }

    /// What the page shows for every element matching `css`. Read again when the page was
    /// replaced between finding and reading (a reload after a button's request).
    fn texts(&self, css: &str) -> Vec<String> {
        for _ in 0..20 {
            let read = self.runtime.block_on(async {
                let mut texts = Vec::new();
                for element in self.client().find_all(Locator::Css(css)).await? {
                    texts.push(element.text().await?);
                }
                Ok::<_, fantoccini::error::CmdError>(texts)
            });
            match read {
                Ok(texts) => return texts,
                Err(e) if e.is_stale_element_reference() => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => panic!("{css}: {e}"),
            }
        }
        panic!("{css} kept going stale");
    }

    fn attribute(&self, css: &str, name: &str) -> String {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
            element.attr(name).await.unwrap().unwrap_or_default()
        })
    }

    fn click(&self, css: &str) {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
            element.click().await.unwrap_or_else(|e| panic!("clicking {css}: {e}"));
        });
    }

    fn script(&self, script: &str) -> Value {
        self.runtime.block_on(self.client().execute(script, Vec::new())).unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The text of an open dialog (alert, confirm), if one is open.
    fn dialog(&self) -> Option<String> {
        match self.runtime.block_on(self.client().get_alert_text()) {
            Ok(text) => Some(text),
            Err(e) if e.is_no_such_alert() => None,
            Err(e) => panic!("asking for a dialog: {e}"),
        }
    }

    fn answer_dialog(&self, accept: bool) {
        let answered = if accept {
            self.runtime.block_on(self.client().accept_alert())
        } else {
            self.runtime.block_on(self.client().dismiss_alert())
        };
        answered.expect("a dialog to answer");
    }

    /// Waits until `condition` holds of the page, which may be reloading meanwhile.
    fn wait_until(&self, what: &str, mut condition: impl FnMut(&Browser) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if condition(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{what} did not happen within 15 s; the page holds:\n{}", self.text("body"));
    }

    fn resize(&self, width: u32, height: u32) {
        self.runtime.block_on(self.client().set_window_size(width, height)).unwrap();
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let dir = std::env::var_os("CRONPUSH_SCREENSHOTS")
            .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots"), PathBuf::from);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The article's push: `some_metric` into `job="some_job"` (its main.go pushes a gauge).
const ARTICLE_PUSH: &str =
    "# HELP some_metric The article's metric.\n# TYPE some_metric gauge\nsome_metric{status=\"ok\"} 3.5\n";

fn api_groups(gateway: &Server, prefix: &str) -> Vec<Value> {
    let reply = gateway.get(&format!("{prefix}/api/v1/metrics"));
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    body["data"].as_array().unwrap().clone()
}

fn group_labels(gateway: &Server, prefix: &str) -> Vec<Value> {
    api_groups(gateway, prefix).iter().map(|g| g["labels"].clone()).collect()
}

/// The groups page under a route prefix, as the article serves it behind `/pushgateway`: what a
/// person sees in each group, the families behind a click, and the delete and wipe buttons
/// with their confirmations, whose requests really remove the groups on the gateway.
#[test]
fn the_groups_page_shows_each_group_and_its_buttons_delete_after_a_confirmation() {
    let prefix = "/pushgateway";
    let gateway = Server::cronpush_at(&["--web.route-prefix=/pushgateway", "--web.enable-admin-api"], prefix);
    assert_eq!(gateway.put(&format!("{prefix}/metrics/job/some_job/instance/pi"), ARTICLE_PUSH).status, 200);
    let other = "# TYPE backup_bytes counter\nbackup_bytes{volume=\"home\"} 1024\nbackup_bytes{volume=\"etc\"} 12\n";
    assert_eq!(gateway.put(&format!("{prefix}/metrics/job/backup"), other).status, 200);
    // A refused push (some_metric is a gauge in the other group): its failure time shows, and
    // the group is flagged.
    let clash = "# TYPE some_metric counter\nsome_metric 1\n";
    assert_eq!(gateway.post(&format!("{prefix}/metrics/job/backup"), clash).status, 400);

    let browser = Browser::start();
    browser.goto(&gateway.url(&format!("{prefix}/")));
    assert_eq!(browser.text("h1"), "Groups");
    let summaries = browser.texts("details.group > summary");
    assert_eq!(summaries.len(), 2, "{summaries:#?}");
    let backup = &summaries[0];
    assert!(backup.contains("job=\"backup\""), "{backup}");
    assert!(backup.contains("push_time_seconds:") && (backup.contains("ago") || backup.contains("now")), "{backup}");
    assert!(backup.contains("push_failure_time_seconds:") && backup.contains("the last push failed"), "{backup}");
    let article = &summaries[1];
    assert!(article.contains("instance=\"pi\"") && article.contains("job=\"some_job\""), "{article}");
    assert!(article.contains("push_failure_time_seconds: never"), "{article}");
    // Absolute times are shown beside the relative ones.
    let year = jiff::Timestamp::now().to_string()[..4].to_string();
    assert!(article.contains(&format!("{year}-")), "no absolute time in {article}");
    // The stylesheet came through the prefix: the failing group has its red edge.
    let edge =
        browser.script("return getComputedStyle(document.querySelector('details.group.failing')).borderLeftWidth;");
    assert_eq!(edge, json!("4px"), "the stylesheet did not load under {prefix}");

    // Families are behind a click, with their type, help and series.
    assert!(!browser.script("return document.querySelector('details.family').checkVisibility();").as_bool().unwrap());
    browser.click("details.group:nth-of-type(2) > summary");
    browser.click("details.group:nth-of-type(2) details.family > summary");
    let family = browser.text("details.group:nth-of-type(2) details.family");
    assert!(
        family.contains("some_metric") && family.contains("gauge") && family.contains("The article's metric."),
        "{family}"
    );
    assert!(family.contains("status=\"ok\"") && family.contains("3.5"), "{family}");

    // Delete the article's group: dismissing the confirmation changes nothing.
    browser.click("details.group:nth-of-type(2) button[data-method=DELETE]");
    let question = browser.dialog().expect("a confirmation before deleting");
    assert!(question.contains("job=\"some_job\"") && question.contains("instance=\"pi\""), "{question}");
    browser.answer_dialog(false);
    assert_eq!(group_labels(&gateway, prefix).len(), 2, "a dismissed confirmation deleted something");
    // Accepting it deletes the group on the gateway, and the page shows what is left.
    browser.click("details.group:nth-of-type(2) button[data-method=DELETE]");
    browser.answer_dialog(true);
    browser.wait_until("the page showing one group", |b| b.texts("details.group > summary").len() == 1);
    assert_eq!(group_labels(&gateway, prefix), [json!({"job": "backup"})]);
    assert!(!gateway.get(&format!("{prefix}/metrics")).body.contains("some_metric"));

    // Delete all groups: again only after a confirmation.
    browser.click("button[data-method=PUT]");
    let question = browser.dialog().expect("a confirmation before wiping");
    assert!(question.contains("every group"), "{question}");
    browser.answer_dialog(true);
    browser.wait_until("the page showing no group", |b| {
        b.texts("main").first().is_some_and(|main| main.contains("No groups have been pushed yet."))
    });
    assert_eq!(group_labels(&gateway, prefix), Vec::<Value>::new());
}

/// Without the admin API there is nothing to click; reading needs no JavaScript at all.
#[test]
fn without_the_admin_api_there_are_no_buttons_and_reading_needs_no_javascript() {
    let gateway = Server::cronpush(&[]);
    assert_eq!(gateway.put("/metrics/job/some_job/instance/pi", ARTICLE_PUSH).status, 200);
    let browser = Browser::with_javascript(false);
    for page in ["/", "/cronjobs", "/status"] {
        browser.goto(&gateway.url(page));
        // The filter form's button only reads; no button changes anything.
        assert_eq!(browser.texts("button[data-method]").len(), 0, "{page} has buttons without the admin API");
    }
    // Scripts are really off: the UI's script opens the group a link points at, and here the
    // group stays closed.
    browser.goto(&gateway.url("/"));
    let id = browser.attribute("details.group", "id");
    browser.goto(&gateway.url(&format!("/#{id}")));
    assert_eq!(browser.texts("details.group[open]").len(), 0, "the UI's script ran");
    browser.click("details.group > summary");
    browser.click("details.family > summary");
    let family = browser.text("details.family");
    assert!(family.contains("some_metric") && family.contains("3.5"), "{family}");

    let status = {
        browser.goto(&gateway.url("/status"));
        browser.text("main")
    };
    assert!(status.contains(env!("CARGO_PKG_VERSION")), "{status}");
    assert!(status.contains("web.listen-address"), "no flags on the status page:\n{status}");
    assert!(status.contains("started") && status.contains("ago"), "{status}");
}

/// Groups and families a person opened stay open across a refresh, and closed ones closed, in
/// the same tab (the Pushgateway's UI does this since 1.7); the page of one group shows it open.
#[test]
fn opened_groups_stay_open_across_a_refresh() {
    let gateway = Server::cronpush(&[]);
    assert_eq!(gateway.put("/metrics/job/some_job/instance/pi", ARTICLE_PUSH).status, 200);
    assert_eq!(gateway.put("/metrics/job/other_job", "other_metric 1\n").status, 200);
    let browser = Browser::with_javascript(true);
    browser.goto(&gateway.url("/"));
    assert_eq!(browser.texts("details[open]").len(), 0, "nothing is open at first");
    browser.click("details.group > summary");
    browser.click("details.group[open] details.family > summary");
    let opened = (browser.attribute("details.group[open]", "id"), browser.attribute("details.family[open]", "id"));
    browser.script("window.location.reload();");
    browser.wait_until("the page came back with the group open", |b| b.texts("details.group[open]").len() == 1);
    assert_eq!(browser.attribute("details.group[open]", "id"), opened.0);
    assert_eq!(browser.attribute("details.family[open]", "id"), opened.1);
    assert!(browser.text("details.family[open]").contains("_metric"), "the family's series are shown");
    // Closed again, it stays closed.
    browser.click("details.group[open] > summary");
    browser.script("window.location.reload();");
    browser.wait_until("the page came back", |b| b.texts("details.group").len() == 2);
    assert_eq!(browser.texts("details.group[open]").len(), 0);
    // A new tab's session starts as the server writes the page.
    let fresh = Browser::with_javascript(true);
    fresh.goto(&gateway.url("/"));
    assert_eq!(fresh.texts("details[open]").len(), 0);
}

/// What users pushed is text: a label value, a help text and a board field that hold markup
/// are shown as typed, and run nothing.
#[test]
fn pushed_markup_is_shown_as_text_and_runs_nothing() {
    let gateway = Server::cronpush(&["--web.enable-admin-api"]);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(HOSTILE);
    let body =
        format!("# HELP some_metric {HOSTILE}\n# TYPE some_metric gauge\nsome_metric{{status=\"{HOSTILE}\"}} 1\n");
    assert_eq!(gateway.put(&format!("/metrics/job/xss/tag@base64/{encoded}"), &body).status, 200);
    let board = format!(
        "cronjob_info{{schedule=\"{HOSTILE}\",timezone=\"UTC\",concurrency_policy=\"Allow\"}} 1\n\
         cronjob_last_start_timestamp_seconds {}\n",
        jiff::Timestamp::now().as_second()
    );
    assert_eq!(
        gateway.post(&format!("/metrics/job/cronpush/namespace@base64/{encoded}/cronjob/x"), &board).status,
        200
    );

    let browser = Browser::start();
    browser.goto(&gateway.url("/"));
    browser.script("document.querySelectorAll('details').forEach(d => d.open = true);");
    let main = browser.text("main");
    assert!(main.contains(&format!("tag=\"{HOSTILE}\"")), "the label value is not shown as text:\n{main}");
    assert!(main.contains(&format!("status=\"{HOSTILE}\"")), "{main}");
    assert!(main.contains(HOSTILE), "{main}");
    browser.goto(&gateway.url("/cronjobs"));
    let row = browser.text("table.board tbody tr");
    assert!(row.contains(&format!("{HOSTILE}/x")) && row.contains(HOSTILE), "{row}");
    for page in ["/", "/cronjobs", &format!("/cronjobs/{}/x", utf8_percent_encode(HOSTILE, NON_ALPHANUMERIC))] {
        browser.goto(&gateway.url(page));
        if page == "/" {
            browser.script("document.querySelectorAll('details').forEach(d => d.open = true);");
        }
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(browser.dialog(), None, "markup ran on {page}: an alert is open");
        let images = browser.script("return document.querySelectorAll('img').length;");
        assert_eq!(images, json!(0), "pushed markup became an element on {page}");
    }
}

/// The board after real CronJob runs, one per status: problems first, each row saying what a
/// person needs at a glance; the same as JSON; and readable on a phone.
/// One gateway for several clusters (`cronpush webhook --cluster-name`): the board groups the
/// CronJobs by cluster under a heading each, problems first within each, and the JSON says which.
#[test]
fn the_board_groups_the_cronjobs_of_each_cluster() {
    let gateway = Server::cronpush(&[]);
    let now = jiff::Timestamp::now().as_second();
    let run = |code: i32| {
        let result = if code == 0 { "success" } else { "failure" };
        format!(
            "cronjob_last_start_timestamp_seconds {start}\ncronjob_last_completion_timestamp_seconds {end}\n\
             cronjob_last_result{{result=\"{result}\"}} 1\ncronjob_last_exit_code{{container=\"main\"}} {code}\n",
            start = now - 30,
            end = now - 20,
        )
    };
    for (path, code) in [
        ("/metrics/job/cronpush/cluster/west/namespace/batch/cronjob/nightly", 0),
        ("/metrics/job/cronpush/cluster/east/namespace/batch/cronjob/nightly", 3),
        ("/metrics/job/cronpush/cluster/east/namespace/batch/cronjob/hourly", 0),
        ("/metrics/job/cronpush/namespace/batch/cronjob/nightly", 0),
    ] {
        assert_eq!(gateway.post(path, &run(code)).status, 200, "{path}");
    }
    let browser = Browser::start();
    browser.goto(&gateway.url("/cronjobs"));
    assert_eq!(browser.texts("table.board tr.cluster-heading"), ["no cluster", "cluster east", "cluster west"]);
    assert_eq!(browser.texts("table.board tbody tr").len(), 3 + 4, "a heading per cluster, a row per CronJob");
    let names = browser.texts("table.board tbody .cronjob");
    assert_eq!(names, ["batch/nightly", "batch/nightly", "batch/hourly", "batch/nightly"]);
    let statuses = browser.texts("table.board tbody td[data-label=status] .status");
    assert_eq!(statuses, ["ok", "failed", "ok", "ok"], "east's failure first within east");

    let json: Value = serde_json::from_str(&gateway.get("/api/v1/cronjobs").body).unwrap();
    let clusters: Vec<Value> =
        json["data"]["cronjobs"].as_array().unwrap().iter().map(|r| r["cluster"].clone()).collect();
    assert_eq!(clusters, [Value::Null, json!("east"), json!("east"), json!("west")]);
}

#[test]
fn the_board_shows_every_cronjob_problems_first() {
    let gateway = Server::cronpush(&[]);
    let now = jiff::Timestamp::now().as_second();
    let slot = now.div_euclid(60) * 60;
    // Each CronJob runs `*/1 * * * *`; the grace and the maximum run time (an hour, so that the
    // running one stays within it however slow the machine) are its annotations.
    let at = |namespace: &str, grace: &str, slot: i64| {
        let annotations = json!({"cronpush.io/grace-seconds": grace, "cronpush.io/max-run-seconds": "3600"});
        let spec = CronJobRun {
            // The unknown run's sidecar gives up on the relay within this.
            termination_grace_seconds: 6,
            ..CronJobRun::at(namespace, "report", annotations, jiff::Timestamp::from_second(slot).unwrap())
        };
        Run::admit_run(spec, &gateway.base, |_| {})
    };
    // ok: a run of this minute that exited 0.
    run_to_end(&at("team-ok", "600", slot), "exit 0");
    // failed: exit 3.
    run_to_end(&at("team-failed", "600", slot), "exit 3");
    // running: started, not ended.
    let running = at("team-running", "600", slot);
    run_start(&running);
    // late: a successful run ten minutes ago; its next slot plus the 30 s grace has passed.
    run_to_end(&at("team-late", "30", slot - 600), "exit 0");
    // unknown: the main container's end is never reported, and the relay is gone.
    let mut unknown = at("team-unknown", "600", slot);
    run_start(&unknown);
    let mut sidecar = unknown.start_sidecar();
    let _ = run_main("exit 0");
    unknown.webhook.stop();
    stop_sidecar(&unknown, &mut sidecar, Duration::from_secs(6));

    let browser = Browser::start();
    browser.goto(&gateway.url("/cronjobs"));
    assert_eq!(browser.text("h1"), "CronJobs");
    let statuses = browser.texts("table.board tbody td[data-label=status] .status");
    assert_eq!(statuses, ["failed", "late", "unknown", "running", "ok"]);
    let names = browser.texts("table.board tbody .cronjob");
    assert_eq!(
        names,
        ["team-failed/report", "team-late/report", "team-unknown/report", "team-running/report", "team-ok/report"]
    );
    let counts = browser.text(".counts");
    assert!(counts.contains("1 failed") && counts.contains("1 ok"), "{counts}");

    let row = |n: usize| browser.text(&format!("table.board tbody tr:nth-of-type({n})"));
    let failed = row(1);
    assert!(failed.contains(&format!("{MAIN} exited with 3 (Error)")), "{failed}");
    assert!(failed.contains("*/1 * * * *") && failed.contains("UTC"), "{failed}");
    assert!(failed.contains("3 (Error)"), "{failed}");
    let late = row(2);
    assert!(late.contains("the next run should have started") && late.contains("ago"), "{late}");
    let unknown_row = row(3);
    assert!(unknown_row.contains("exit status could not be learned"), "{unknown_row}");
    let running_row = row(4);
    assert!(running_row.contains("running for") && running_row.contains("so far"), "{running_row}");
    let ok = row(5);
    assert!(ok.contains("the last run succeeded") && ok.contains("0 (Completed)"), "{ok}");
    assert!(ok.contains("in ") || ok.contains("ago"), "no next run in {ok}");
    // Each row links to its CronJob's page, and that to its group on the groups page.
    browser.click("table.board tbody tr:nth-of-type(1) a.cronjob");
    browser.wait_until("the CronJob's page", |b| b.texts("h1") == ["team-failed/report"]);
    browser.click("a.group-link");
    browser.wait_until("the groups page", |b| b.texts("h1") == ["Groups"]);
    // The link asks for that group alone, unfolded.
    let group = browser.text("details.group[open] > summary");
    assert!(group.contains("namespace=\"team-failed\"") && group.contains("cronjob=\"report\""), "{group}");
    assert_eq!(browser.texts("details.group").len(), 1);

    // The same board as JSON, for scripts.
    let json: Value = serde_json::from_str(&gateway.get("/api/v1/cronjobs").body).unwrap();
    let rows = json["data"]["cronjobs"].as_array().unwrap();
    let by_status: Vec<(&str, &str)> =
        rows.iter().map(|r| (r["namespace"].as_str().unwrap(), r["status"].as_str().unwrap())).collect();
    assert_eq!(
        by_status,
        [
            ("team-failed", "failed"),
            ("team-late", "late"),
            ("team-unknown", "unknown"),
            ("team-running", "running"),
            ("team-ok", "ok")
        ]
    );
    assert_eq!(rows[0]["containers"], json!([{"container": MAIN, "exit_code": 3.0, "reason": "Error", "signal": ""}]));
    assert_eq!(rows[0]["schedule"], "*/1 * * * *");
    assert_eq!(rows[4]["next_scheduled"], json!((slot + 60) as f64));

    browser.goto(&gateway.url("/cronjobs"));
    let desktop = browser.screenshot("board.png");
    // On a phone: every row is a card, nothing wider than the screen.
    browser.resize(390, 844);
    browser.goto(&gateway.url("/cronjobs"));
    let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth;");
    assert_eq!(fits, json!(true), "the board is wider than a phone's screen");
    let display = browser.script("return getComputedStyle(document.querySelector('table.board td')).display;");
    assert_eq!(display, json!("block"), "the board's rows are not cards on a phone");
    let phone = browser.screenshot("board-phone.png");
    for path in [desktop, phone] {
        assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{} is nearly empty", path.display());
    }
    drop(running);
}

/// A CronJob's recent runs after real runs through the kubelet emulation: a strip of marks on
/// its board row, and its page with the runs as a table and their durations as a chart with the
/// maximum run time drawn; readable without JavaScript and on a phone, fetching nothing from
/// another origin.
#[test]
fn a_cronjobs_runs_show_as_a_strip_and_on_its_own_page() {
    let gateway = Server::cronpush(&[]);
    let now = jiff::Timestamp::now().as_second();
    let slot = now.div_euclid(60) * 60;
    // The failed runs' last lines are asked for (the webhook's flag and the CronJob's
    // annotation); the one that exits 3 writes markup to its log.
    // Runs of 0 to 3 seconds against a maximum run time of 5, so that the chart shows both.
    let annotations = json!({"cronpush.io/grace-seconds": "600", "cronpush.io/max-run-seconds": "5",
                             "cronpush.io/log-lines": "20"});
    let commands = [
        "exit 0",
        "sleep 1; echo 'copying'; echo '<script>alert(1)</script>' >&2; exit 3",
        "sleep 2; kill -KILL $$",
        "sleep 3; exit 0",
    ];
    for (i, command) in commands.iter().enumerate() {
        let scheduled = jiff::Timestamp::from_second(slot - 60 * (commands.len() - 1 - i) as i64).unwrap();
        let spec = CronJobRun {
            webhook_flags: vec!["--failed-run-logs"],
            ..CronJobRun::at("team-strip", "report", annotations.clone(), scheduled)
        };
        run_to_end(&Run::admit_run(spec, &gateway.base, |_| {}), command);
    }

    let browser = Browser::start();
    browser.goto(&gateway.url("/cronjobs"));
    let marks = browser.runtime.block_on(async {
        let mut marks = Vec::new();
        for mark in browser.client().find_all(Locator::Css("a.strip i")).await.unwrap() {
            marks.push((mark.attr("class").await.unwrap().unwrap(), mark.attr("title").await.unwrap().unwrap()));
        }
        marks
    });
    let classes: Vec<&str> = marks.iter().map(|(class, _)| class.as_str()).collect();
    assert_eq!(classes, ["run-success", "run-failure", "run-failure", "run-success"], "oldest first");
    assert!(
        marks[1].1.starts_with("failed, ") && marks[1].1.contains(&format!("{MAIN} exited with 3 (Error)")),
        "{marks:?}"
    );
    assert!(marks[2].1.contains("exited with 137 (Error, SIGKILL)"), "SIGKILL: {marks:?}");
    assert!(marks[3].1.starts_with("succeeded, 3s") || marks[3].1.starts_with("succeeded, 4s"), "{marks:?}");

    browser.click("a.strip");
    browser.wait_until("the CronJob's page", |b| b.texts("h1") == ["team-strip/report"]);
    let outcomes = browser.texts("table.runs tbody td[data-label=result]");
    assert_eq!(outcomes, ["success", "failed", "failed", "success"], "newest first");
    let newest = browser.text("table.runs tbody tr:nth-of-type(1)");
    assert!(newest.contains("0 (Completed)"), "{newest}");
    let facts = browser.text("table.facts");
    assert!(facts.contains("*/1 * * * *") && facts.contains("maximum run time") && facts.contains("5s"), "{facts}");
    assert!(facts.contains("next run") && (facts.contains("in ") || facts.contains("ago")), "{facts}");
    assert_eq!(browser.texts("svg rect.bar").len(), 4, "a bar per run");
    assert_eq!(browser.text("svg text.limit-label"), "maximum run time 5s");
    let colours =
        browser.script("return [...document.querySelectorAll('svg rect.bar')].map(b => getComputedStyle(b).fill);");
    let colours = colours.as_array().unwrap();
    assert_ne!(colours[0], colours[1], "a failed run's bar has another colour than a success's");
    assert_eq!(colours[1], colours[2]);

    let desktop = browser.screenshot("cronjob.png");

    // The failed run's last lines, as text: the markup in them is shown, and runs nothing.
    // The newest failed run's lines are unfolded: the killed one, which wrote nothing.
    assert_eq!(browser.text("table.runs tr.logs details[open]"), format!("last lines of {MAIN}\nits log was empty"));
    browser.click("table.runs tr.logs details:not([open]) > summary");
    let lines = browser.texts("table.runs pre.log");
    assert_eq!(lines, ["copying\n<script>alert(1)</script>"], "the run that exited 3 wrote markup");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(browser.dialog(), None, "a log line ran");
    assert_eq!(browser.script("return document.scripts.length;"), json!(1), "only the UI's own script");

    // Nothing on the page came from elsewhere.
    let origin = gateway.url("");
    let fetched = browser.script("return performance.getEntriesByType('resource').map(e => e.name);");
    for url in fetched.as_array().unwrap() {
        assert!(url.as_str().unwrap().starts_with(&origin), "{url} is not from {origin}");
    }

    // On a phone: nothing wider than the screen, each run a card.
    browser.resize(390, 844);
    browser.goto(&gateway.url("/cronjobs/team-strip/report"));
    let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth;");
    assert_eq!(fits, json!(true), "the CronJob's page is wider than a phone's screen");
    let display = browser.script("return getComputedStyle(document.querySelector('table.runs td')).display;");
    assert_eq!(display, json!("block"));
    let chart = browser.script("return document.querySelector('figure.chart svg').getBoundingClientRect().width;");
    assert!(chart.as_f64().unwrap() <= 390.0, "the chart shrinks to the screen: {chart}");
    let phone = browser.screenshot("cronjob-phone.png");
    for path in [desktop, phone] {
        assert!(std::fs::metadata(&path).unwrap().len() > 10_000, "{} is nearly empty", path.display());
    }

    // Without JavaScript the same page reads the same.
    let plain = Browser::with_javascript(false);
    plain.goto(&gateway.url("/cronjobs/team-strip/report"));
    assert_eq!(plain.texts("table.runs tbody tr[id]").len(), 4, "a row per run");
    plain.goto(&gateway.url("/cronjobs"));
    assert_eq!(plain.texts("a.strip i").len(), 4);
}

/// A real cluster's size: 10,000 CronJobs. The first screen of the board and of the groups page
/// is one small page whatever the store holds, problems first, rendered by the browser in well
/// under a second; the filters find the rest.
#[test]
fn ten_thousand_cronjobs_arrive_as_a_small_first_screen() {
    const CRONJOBS: usize = 10_000;
    let gateway = Server::cronpush(&[]);
    let now = jiff::Timestamp::now().as_second();
    let slot = now.div_euclid(300) * 300;
    // One push per CronJob, as a sidecar's end after its start: every 50th failed.
    let push = |i: usize| {
        let code = if i.is_multiple_of(50) { 3 } else { 0 };
        let result = if code == 0 { "success" } else { "failure" };
        let body = format!(
            "cronjob_info{{schedule=\"*/5 * * * *\",timezone=\"UTC\",concurrency_policy=\"Forbid\"}} 1\n\
             cronjob_last_scheduled_timestamp_seconds {slot}\ncronjob_last_start_timestamp_seconds {}\n\
             cronjob_next_scheduled_timestamp_seconds {}\ncronjob_schedule_grace_seconds 600\n\
             cronjob_last_completion_timestamp_seconds {}\ncronjob_last_ended_scheduled_timestamp_seconds {slot}\n\
             cronjob_last_result{{result=\"{result}\"}} 1\ncronjob_last_exit_code{{container=\"main\"}} {code}\n\
             cronjob_last_duration_seconds 10\n",
            slot + 2,
            slot + 300,
            slot + 12,
        );
        let path = format!("/metrics/job/cronpush/namespace/team-{:03}/cronjob/job-{i:05}", i % 200);
        assert_eq!(gateway.post(&path, &body).status, 200, "{path}");
    };
    std::thread::scope(|scope| {
        for worker in 0..8 {
            scope.spawn(move || (worker..CRONJOBS).step_by(8).for_each(push));
        }
    });

    for (page, rows) in [("/cronjobs", "table.board tbody tr"), ("/", "details.group")] {
        let html = gateway.get(page).body;
        assert!(html.len() < 200_000, "{page} is {} bytes", html.len());
        let browser = Browser::start();
        browser.resize(390, 844);
        browser.goto(&gateway.url(page));
        // The browser's part: from the first byte of the answer to a page laid out and ready
        // (the server's is measured by the benchmark, in a release build).
        let took = browser.script(
            "const t = performance.getEntriesByType('navigation')[0]; \
             return t.domContentLoadedEventEnd - t.responseStart;",
        );
        assert!(took.as_f64().unwrap() < 1000.0, "{page} took {took} ms to render");
        eprintln!("{page}: {} bytes of HTML for {CRONJOBS} CronJobs, laid out in {took} ms", html.len());
        assert!(!browser.texts(rows).is_empty());
        assert!(browser.text("nav.pager").contains(&format!("of {CRONJOBS}")), "{}", browser.text("nav.pager"));
        if page == "/cronjobs" {
            let statuses = browser.texts("table.board tbody td[data-label=status] .status");
            assert_eq!(statuses.len(), 100);
            assert_eq!(statuses.iter().filter(|s| *s == "failed").count(), 100, "the 200 failed ones first");
            // The form finds one CronJob among them.
            browser.resize(1280, 900);
            browser.runtime.block_on(async {
                let input = browser.client().find(Locator::Css("form.filters input[name=q]")).await.unwrap();
                input.send_keys("job-04321").await.unwrap();
                browser.client().find(Locator::Css("form.filters button")).await.unwrap().click().await.unwrap();
            });
            browser
                .wait_until("the filtered board", |b| b.texts("table.board tbody .cronjob") == ["team-121/job-04321"]);
            assert!(browser.script("return location.search;").as_str().unwrap().contains("q=job-04321"));
        }
    }
    let failed: Value = serde_json::from_str(&gateway.get("/api/v1/cronjobs?status=failed&per_page=10").body).unwrap();
    assert_eq!(failed["data"]["total"], json!(200));
}
