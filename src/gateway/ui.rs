//! The HTML page at the UI root: every group with its last push and failure times and its
//! families. A plain first version; the full UI and the CronJob board have their own issue.

use std::fmt::Write;

use super::api::rfc3339;
use super::store::Store;
use crate::exposition::text_write::type_name;

pub fn groups_page(store: &Store, prefix: &str) -> String {
    let mut body = String::new();
    if store.group_count() == 0 {
        body.push_str("<p>No groups have been pushed yet.</p>\n");
    }
    for group in store.groups() {
        let labels: Vec<String> =
            group.key.labels().iter().map(|(n, v)| format!("{}=\"{}\"", escape(n), escape(v))).collect();
        let _ = write!(
            body,
            "<section class=\"group\">\n<h2>{}</h2>\n<p>last push: {} · last failure: {}{}</p>\n<ul>\n",
            labels.join(", "),
            when(group.last_push),
            when(group.last_failure),
            if group.last_push_successful() { "" } else { " · <strong>the last push failed</strong>" }
        );
        for (name, stored) in &group.families {
            let _ = writeln!(
                body,
                "<li><code>{}</code> {} ({} series){}</li>",
                escape(name),
                type_name(stored.ty()),
                stored.series_count(),
                if stored.help().is_empty() { String::new() } else { format!(": {}", escape(stored.help())) }
            );
        }
        body.push_str("</ul>\n</section>\n");
    }
    page("cronpush gateway", prefix, &body)
}

pub fn status_page(status_json: &str, prefix: &str) -> String {
    page("cronpush gateway status", prefix, &format!("<pre>{}</pre>\n", escape(status_json)))
}

fn page(title: &str, prefix: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{title}</title>\n</head>\n<body>\n\
<header><a href=\"{p}/\">groups</a> · <a href=\"{p}/status\">status</a></header>\n<h1>{title}</h1>\n{body}</body>\n</html>\n",
        p = escape(prefix)
    )
}

fn when(nanos: i64) -> String {
    if nanos == 0 { "never".into() } else { rfc3339(nanos) }
}

/// Everything a user pushed is text, never markup.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
