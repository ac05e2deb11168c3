//! What a person or a script asks to see of the board and the groups: filters carried in the
//! URL's query (`?cluster=east&namespace=batch&status=failed&q=backup&page=2`), so that a link
//! or a bookmark shows the same selection, and pages, so that the first screen arrives as a
//! small page whatever the store holds (10,000 CronJobs made a 9 MB board and a 22 MB groups
//! page, which a phone's browser does not cope with).
//!
//! The pages always show one page of what matched; the JSON APIs answer everything that
//! matched unless a page is asked for, as they did before the filters existed.

use std::fmt::Write as _;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use thiserror::Error;

use crate::gateway::store::{Group, GroupingKey};

/// How many rows a page of the board shows unless told otherwise: some 125 KB of HTML with
/// each row's strip of runs.
pub const BOARD_PAGE: usize = 100;
/// How many groups a page of the groups page shows unless told otherwise: a group's families
/// are folded but written out whole, some 7 KB for a CronJob's group, so about 140 KB.
pub const GROUPS_PAGE: usize = 20;
/// The most rows or groups one page may ask for.
pub const MOST_PER_PAGE: usize = 1_000;

/// A query the pages and APIs cannot answer: it says which parameter, and what it takes.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error("unknown status {given:?}: the statuses are {known}")]
    UnknownStatus { given: String, known: String },
    #[error("{parameter}={given:?} is not a number from 1 to {most}")]
    NotAPageNumber { parameter: &'static str, given: String, most: usize },
}

/// The filters and the page. Every filter is optional; together they all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The grouping key's `cluster`, exactly.
    pub cluster: Option<String>,
    /// The grouping key's `namespace`, exactly.
    pub namespace: Option<String>,
    /// Any of these statuses (as each page names them: the board's, or a group's `failing` and
    /// `ok`); none: all.
    pub statuses: Vec<String>,
    /// A piece of a name, in any case: of the namespace, the CronJob or the job on the board,
    /// of any grouping-key value on the groups page.
    pub text: String,
    /// One group, by the id of its element on the groups page (the board and the CronJob page
    /// link to a group this way).
    pub group: Option<String>,
    /// 1-based; none: the first page of a page, everything from an API.
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

impl Selection {
    /// Reads the query of a request; `statuses` are the ones this page knows. Parameters it does
    /// not know are left alone, as the reference's API leaves them.
    pub fn from_query(query: Option<&str>, statuses: &[&str]) -> Result<Selection, SelectionError> {
        let mut selection = Selection::default();
        for (name, value) in query_pairs(query.unwrap_or_default()) {
            let value = value.trim().to_string();
            match name.as_str() {
                _ if value.is_empty() => {}
                "cluster" => selection.cluster = Some(value),
                "namespace" => selection.namespace = Some(value),
                "q" => selection.text = value.to_lowercase(),
                "group" => selection.group = Some(value),
                // `status=failed,late` and `status=failed&status=late` are the same.
                "status" => {
                    for status in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if !statuses.contains(&status) {
                            return Err(SelectionError::UnknownStatus {
                                given: status.into(),
                                known: statuses.join(", "),
                            });
                        }
                        if !selection.statuses.iter().any(|s| s == status) {
                            selection.statuses.push(status.into());
                        }
                    }
                }
                "page" => selection.page = Some(page_number("page", &value, usize::MAX)?),
                "per_page" => selection.per_page = Some(page_number("per_page", &value, MOST_PER_PAGE)?),
                _ => {}
            }
        }
        Ok(selection)
    }

    /// Whether anything narrows what is shown (a page number does not).
    pub fn is_filtered(&self) -> bool {
        self.cluster.is_some()
            || self.namespace.is_some()
            || !self.statuses.is_empty()
            || !self.text.is_empty()
            || self.group.is_some()
    }

    /// Whether a thing with these names passes the cluster, namespace and text filters; `names`
    /// are what the text is looked for in.
    pub fn admits<'a>(
        &self,
        cluster: Option<&str>,
        namespace: Option<&str>,
        names: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        if self.cluster.as_deref().is_some_and(|c| cluster != Some(c)) {
            return false;
        }
        if self.namespace.as_deref().is_some_and(|n| namespace != Some(n)) {
            return false;
        }
        self.text.is_empty() || names.into_iter().any(|name| contains_folded(name, &self.text))
    }

    /// Whether a group passes every filter: its cluster and namespace labels, the text in any
    /// of its grouping key's values, its status (`failing` when its last push was refused, else
    /// `ok`), and the one group asked for.
    pub fn admits_group(&self, group: &Group) -> bool {
        let key = &group.key;
        self.admits(key.get("cluster"), key.get("namespace"), key.labels().iter().map(|(_, value)| value.as_str()))
            && self.admits_status(if group.last_push_successful() { "ok" } else { "failing" })
            && self.group.as_deref().is_none_or(|id| group_id(key) == id)
    }

    pub fn admits_status(&self, status: &str) -> bool {
        self.statuses.is_empty() || self.statuses.iter().any(|s| s == status)
    }

    /// The page of `total` things to show, for a page of `default_size`.
    pub fn page_of(&self, total: usize, default_size: usize) -> Page {
        let size = self.per_page.unwrap_or(default_size).max(1);
        let count = total.div_ceil(size).max(1);
        let number = self.page.unwrap_or(1).min(count);
        let start = (number - 1) * size;
        Page { number, count, size, start, end: (start + size).min(total), total }
    }

    /// This selection as a query (`?...`, or empty), with another status filter or page: the
    /// links of the status counts and of the page navigation.
    pub fn query_with(&self, statuses: Option<&[&str]>, page: Option<usize>) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(cluster) = &self.cluster {
            pairs.push(("cluster", cluster.clone()));
        }
        if let Some(namespace) = &self.namespace {
            pairs.push(("namespace", namespace.clone()));
        }
        let statuses = statuses.map_or_else(|| self.statuses.join(","), |s| s.join(","));
        if !statuses.is_empty() {
            pairs.push(("status", statuses));
        }
        if !self.text.is_empty() {
            pairs.push(("q", self.text.clone()));
        }
        if let Some(group) = &self.group {
            pairs.push(("group", group.clone()));
        }
        if let Some(per_page) = self.per_page {
            pairs.push(("per_page", per_page.to_string()));
        }
        if let Some(page) = page.filter(|p| *p > 1) {
            pairs.push(("page", page.to_string()));
        }
        let mut query = String::new();
        for (i, (name, value)) in pairs.iter().enumerate() {
            let _ = write!(query, "{}{name}={}", if i == 0 { '?' } else { '&' }, encode(value));
        }
        query
    }
}

/// A group's name in a URL (`?group=`): its grouping key in base64url.
pub fn group_id(key: &GroupingKey) -> String {
    URL_SAFE_NO_PAD.encode(key.to_string())
}

/// One page of a list: things `start..end` of `total`, page `number` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: usize,
    pub count: usize,
    pub size: usize,
    pub start: usize,
    pub end: usize,
    pub total: usize,
}

fn page_number(parameter: &'static str, given: &str, most: usize) -> Result<usize, SelectionError> {
    given.parse::<usize>().ok().filter(|n| (1..=most).contains(n)).ok_or_else(|| SelectionError::NotAPageNumber {
        parameter,
        given: given.into(),
        most,
    })
}

/// `name=value` pairs of a query, `+` and percent-escapes decoded as a form sends them.
fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|pair| !pair.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(name), decode(value))
    })
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// What a path segment or query value may hold unescaped: letters, digits and `-._~` (RFC
/// 3986's unreserved characters).
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// `value` escaped for a path segment or a query value of the pages' links.
pub fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, UNRESERVED).to_string()
}

/// Whether `name` holds `folded` (already lower case), in any case.
fn contains_folded(name: &str, folded: &str) -> bool {
    if name.is_ascii() && folded.is_ascii() {
        // The common case, without allocating: Kubernetes names are ASCII.
        name.as_bytes().windows(folded.len()).any(|w| w.eq_ignore_ascii_case(folded.as_bytes()))
    } else {
        name.to_lowercase().contains(folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOARD: &[&str] = &["failed", "late", "unknown", "running", "suspended", "ok"];

    #[test]
    fn a_query_becomes_the_filters_and_back() {
        let query = "cluster=east&namespace=team+a&status=failed,late&status=failed&q=Back%20Up&page=3&per_page=20";
        let selection = Selection::from_query(Some(query), BOARD).unwrap();
        assert_eq!(selection.cluster.as_deref(), Some("east"));
        assert_eq!(selection.namespace.as_deref(), Some("team a"));
        assert_eq!(selection.statuses, ["failed", "late"]);
        assert_eq!(selection.text, "back up");
        assert_eq!((selection.page, selection.per_page), (Some(3), Some(20)));
        assert_eq!(
            selection.query_with(None, Some(2)),
            "?cluster=east&namespace=team%20a&status=failed%2Clate&q=back%20up&per_page=20&page=2"
        );
        let again = Selection::from_query(Some(&selection.query_with(None, Some(3))[1..]), BOARD).unwrap();
        assert_eq!(again, selection, "a link carries the whole selection");
        assert_eq!(
            selection.query_with(Some(&["ok"]), None),
            "?cluster=east&namespace=team%20a&status=ok&q=back%20up&per_page=20"
        );
    }

    #[test]
    fn empty_and_unknown_parameters_change_nothing() {
        let selection = Selection::from_query(Some("cluster=&q=&status=&utm_source=x&&"), BOARD).unwrap();
        assert_eq!(selection, Selection::default());
        assert!(!selection.is_filtered());
        assert_eq!(selection.query_with(None, None), "");
    }

    #[test]
    fn bad_values_are_refused_with_what_they_take() {
        let error = Selection::from_query(Some("status=broken"), BOARD).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown status \"broken\": the statuses are failed, late, unknown, running, suspended, ok"
        );
        for query in ["page=0", "page=two", "page=-1", "per_page=1001", "per_page=0"] {
            let error = Selection::from_query(Some(query), BOARD).unwrap_err();
            assert!(matches!(error, SelectionError::NotAPageNumber { .. }), "{query}: {error}");
        }
    }

    #[test]
    fn the_filters_all_hold_together() {
        let selection = Selection::from_query(Some("cluster=east&q=NIGHT"), BOARD).unwrap();
        assert!(selection.admits(Some("east"), Some("batch"), ["batch", "nightly"]));
        assert!(!selection.admits(Some("west"), Some("batch"), ["batch", "nightly"]));
        assert!(!selection.admits(None, Some("batch"), ["batch", "nightly"]), "no cluster is not east");
        assert!(!selection.admits(Some("east"), Some("batch"), ["batch", "hourly"]));
        let unicode = Selection::from_query(Some("q=%C3%84RGER"), BOARD).unwrap();
        assert!(unicode.admits(None, None, ["kein-ärger"]));
    }

    #[test]
    fn pages_cover_the_list_and_stay_within_it() {
        let first = Selection::default().page_of(250, 100);
        assert_eq!((first.number, first.count, first.start, first.end), (1, 3, 0, 100));
        let last = Selection { page: Some(9), ..Selection::default() }.page_of(250, 100);
        assert_eq!((last.number, last.start, last.end), (3, 200, 250), "past the end: the last page");
        let empty = Selection::default().page_of(0, 100);
        assert_eq!((empty.number, empty.count, empty.start, empty.end), (1, 1, 0, 0));
        let small = Selection { per_page: Some(7), ..Selection::default() }.page_of(20, 100);
        assert_eq!((small.count, small.end), (3, 7));
    }
}
