//! Parser for the Prometheus text exposition format 0.0.4.
//!
//! It follows the state machine of the reference's parser (Go's `expfmt.TextParser`) step for
//! step, because what a Pushgateway user sees on a bad push is its error: the same line number
//! and the same message for the same input. No crate parses this format like the reference
//! (see ENGINEERING.md), hence this file.

use std::collections::HashMap;
use std::fmt;

use super::float::parse_go;
use super::names::{NameRules, go_quote, go_quote_byte, go_quote_bytes};
use crate::proto::client::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile, Summary, Untyped,
};

/// A syntax error, with the 1-based line it was found on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "text format parsing error in line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole body with the legacy name rules. Families come out in the order their names
/// first appear; families that end up without samples (a lone `# TYPE` line) are dropped, as
/// the reference does.
pub fn parse(input: &[u8]) -> Result<Vec<MetricFamily>, ParseError> {
    parse_with(input, NameRules::Legacy)
}

/// Parses a whole body, checking names by `rules`. Quoted names (`{"my.metric","a.b"="1"} 1`,
/// `# TYPE "my.metric" gauge`) are read either way, as prometheus/common's parser does since
/// Pushgateway 1.11; the legacy rules then refuse the ones they do not allow.
pub fn parse_with(input: &[u8], rules: NameRules) -> Result<Vec<MetricFamily>, ParseError> {
    let mut parser = Parser::new(input, rules);
    let mut state = Some(State::StartOfLine);
    while let Some(current) = state {
        state = parser.step(current);
    }
    match parser.err {
        None => {
            let mut families: Vec<MetricFamily> =
                parser.families.into_iter().filter(|f| !f.metric.is_empty()).collect();
            for histogram in families.iter_mut().flat_map(|f| &mut f.metric).filter_map(|m| m.histogram.as_mut()) {
                all_float_or_all_whole(histogram);
            }
            Ok(families)
        }
        Some(Stop::Eof) => Err(ParseError { line: parser.line, msg: "unexpected end of input stream".into() }),
        Some(Stop::Syntax(e)) => Err(e),
    }
}

#[derive(Clone, Copy)]
enum State {
    StartOfLine,
    StartComment,
    ReadingMetricName,
    ReadingLabels,
    StartLabelName,
    StartLabelValue,
    ReadingValue,
    StartTimestamp,
    ReadingHelp,
    ReadingType,
}

enum Stop {
    Eof,
    Syntax(ParseError),
}

/// Which synthetic sample of a summary or histogram the current line is.
#[derive(Clone, Copy, PartialEq)]
enum Suffix {
    None,
    Count,
    Sum,
}

struct Parser<'a> {
    input: &'a [u8],
    rules: NameRules,
    /// The line started with `{`: its metric name is the first name inside the braces.
    name_inside_braces: bool,
    /// That name has been read.
    name_inside_braces_read: bool,
    /// The line's sample has its metric name, so labels have somewhere to go.
    has_metric: bool,
    pos: usize,
    byte: u8,
    err: Option<Stop>,
    line: usize,
    token: Vec<u8>,
    families: Vec<MetricFamily>,
    by_name: HashMap<String, usize>,
    family: usize,
    suffix: Suffix,
    /// The sample being read, not yet placed in its family.
    pending: Metric,
    /// Where the current sample landed in its family.
    metric: usize,
    label_name: String,
    /// Summaries and histograms gather several lines into one metric, found by its labels.
    composite_labels: Vec<(String, String)>,
    composites: HashMap<(usize, Vec<(String, String)>), usize>,
    quantile: f64,
    bucket: f64,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8], rules: NameRules) -> Self {
        Parser {
            input,
            rules,
            name_inside_braces: false,
            name_inside_braces_read: false,
            has_metric: false,
            pos: 0,
            byte: 0,
            err: None,
            line: 0,
            token: Vec::new(),
            families: Vec::new(),
            by_name: HashMap::new(),
            family: 0,
            suffix: Suffix::None,
            pending: Metric::default(),
            metric: 0,
            label_name: String::new(),
            composite_labels: Vec::new(),
            composites: HashMap::new(),
            quantile: f64::NAN,
            bucket: f64::NAN,
        }
    }

    fn step(&mut self, state: State) -> Option<State> {
        match state {
            State::StartOfLine => self.start_of_line(),
            State::StartComment => self.start_comment(),
            State::ReadingMetricName => self.reading_metric_name(),
            State::ReadingLabels => self.reading_labels(),
            State::StartLabelName => self.start_label_name(),
            State::StartLabelValue => self.start_label_value(),
            State::ReadingValue => self.reading_value(),
            State::StartTimestamp => self.start_timestamp(),
            State::ReadingHelp => self.reading_help(),
            State::ReadingType => self.reading_type(),
        }
    }

    fn read_byte(&mut self) -> bool {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.byte = b;
                self.pos += 1;
                true
            }
            None => {
                self.err = Some(Stop::Eof);
                false
            }
        }
    }

    fn failed(&self) -> bool {
        self.err.is_some()
    }

    fn syntax_error(&mut self, msg: String) -> Option<State> {
        self.err = Some(Stop::Syntax(ParseError { line: self.line, msg }));
        None
    }

    /// The current family's type; none before the first family (a line may start with `{`).
    fn family_type(&self) -> Option<MetricType> {
        self.families.get(self.family)?.r#type.and_then(|t| MetricType::try_from(t).ok())
    }

    fn family_name(&self) -> String {
        go_quote(self.families.get(self.family).map_or("", |f| f.name()))
    }

    fn start_of_line(&mut self) -> Option<State> {
        self.line += 1;
        self.has_metric = false;
        self.name_inside_braces = false;
        self.name_inside_braces_read = false;
        self.skip_blank_tab();
        if self.failed() {
            // The only place where the end of input is the normal end.
            if matches!(self.err, Some(Stop::Eof)) {
                self.err = None;
            }
            return None;
        }
        match self.byte {
            b'#' => Some(State::StartComment),
            b'\n' => Some(State::StartOfLine),
            b'{' => {
                self.name_inside_braces = true;
                self.pending = Metric::default();
                Some(State::ReadingLabels)
            }
            _ => Some(State::ReadingMetricName),
        }
    }

    fn start_comment(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        self.read_token_until_whitespace();
        if self.failed() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        let keyword = std::mem::take(&mut self.token);
        if keyword != b"HELP" && keyword != b"TYPE" {
            // Any other comment is skipped to the end of its line.
            while self.byte != b'\n' {
                if !self.read_byte() {
                    return None;
                }
            }
            return Some(State::StartOfLine);
        }
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        self.read_token_as_metric_name();
        if self.failed() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if !is_blank_or_tab(self.byte) {
            return self.syntax_error("invalid metric name in comment".into());
        }
        if !self.set_or_create_family() {
            return None;
        }
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        if keyword == b"HELP" { Some(State::ReadingHelp) } else { Some(State::ReadingType) }
    }

    fn reading_metric_name(&mut self) -> Option<State> {
        self.read_token_as_metric_name();
        if self.failed() {
            return None;
        }
        if self.token.is_empty() {
            return self.syntax_error("invalid metric name".into());
        }
        if !self.set_or_create_family() {
            return None;
        }
        let family = &mut self.families[self.family];
        if family.r#type.is_none() {
            family.r#type = Some(MetricType::Untyped as i32);
        }
        self.pending = Metric::default();
        self.has_metric = true;
        self.skip_blank_tab_if_current_blank_tab();
        if self.failed() {
            return None;
        }
        Some(State::ReadingLabels)
    }

    fn is_composite(&self) -> bool {
        matches!(self.family_type(), Some(MetricType::Summary | MetricType::Histogram | MetricType::GaugeHistogram))
    }

    fn reading_labels(&mut self) -> Option<State> {
        if self.is_composite() {
            self.composite_labels.clear();
            self.quantile = f64::NAN;
            self.bucket = f64::NAN;
        }
        if self.byte != b'{' {
            return Some(State::ReadingValue);
        }
        Some(State::StartLabelName)
    }

    fn start_label_name(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.byte == b'}' {
            // `{}`: no metric name for the labels to belong to.
            if !self.has_metric {
                return self.syntax_error("invalid metric name".into());
            }
            self.skip_blank_tab();
            if self.failed() {
                return None;
            }
            return Some(State::ReadingValue);
        }
        self.read_token_as_label_name();
        if self.failed() {
            return None;
        }
        if self.token.is_empty() {
            let msg = format!("invalid label name for metric {}", self.family_name());
            return self.syntax_error(msg);
        }
        self.skip_blank_tab_if_current_blank_tab();
        if self.failed() {
            return None;
        }
        if self.byte != b'=' {
            if self.name_inside_braces {
                return self.metric_name_inside_braces();
            }
            let msg = format!("expected '=' after label name, found {}", go_quote_byte(self.byte));
            return self.syntax_error(msg);
        }
        let name = match String::from_utf8(std::mem::take(&mut self.token)) {
            Ok(name) => name,
            Err(e) => return self.syntax_error(format!("invalid label name {}", go_quote_bytes(e.as_bytes()))),
        };
        if name == "__name__" {
            return self.syntax_error("label name \"__name__\" is reserved".into());
        }
        if !self.rules.is_valid_label_name(&name) {
            return self.syntax_error(format!("invalid label name {}", go_quote(&name)));
        }
        // `quantile` of a summary and `le` of a histogram are not labels but coordinates.
        let special = match self.family_type() {
            Some(MetricType::Summary) => name == "quantile",
            Some(MetricType::Histogram | MetricType::GaugeHistogram) => name == "le",
            _ => false,
        };
        if !special {
            self.pending.label.push(LabelPair { name: Some(name.clone()), value: None });
        }
        self.label_name = name;
        let labels = &self.pending.label;
        let duplicate =
            labels.iter().enumerate().any(|(i, l)| labels[..i].iter().any(|earlier| earlier.name == l.name));
        if duplicate {
            let msg = format!("duplicate label names for metric {}", self.family_name());
            return self.syntax_error(msg);
        }
        Some(State::StartLabelValue)
    }

    /// A name inside the braces not followed by `=`: the line's metric name (the token), which
    /// must be the only one, followed by `,` and the labels or by `}`.
    fn metric_name_inside_braces(&mut self) -> Option<State> {
        if self.name_inside_braces_read {
            let msg = format!("multiple metric names for metric {}", self.family_name());
            return self.syntax_error(msg);
        }
        if !matches!(self.byte, b',' | b'}') {
            let msg = format!("unexpected end of metric name {}", go_quote_byte(self.byte));
            return self.syntax_error(msg);
        }
        if !self.set_or_create_family() {
            return None;
        }
        let family = &mut self.families[self.family];
        if family.r#type.is_none() {
            family.r#type = Some(MetricType::Untyped as i32);
        }
        if self.is_composite() {
            self.composite_labels.clear();
            self.quantile = f64::NAN;
            self.bucket = f64::NAN;
        }
        self.has_metric = true;
        self.name_inside_braces_read = true;
        if self.byte == b',' {
            return Some(State::StartLabelName);
        }
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        Some(State::ReadingValue)
    }

    fn start_label_value(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        if self.byte != b'"' {
            let msg = format!("expected '\"' at start of label value, found {}", go_quote_byte(self.byte));
            return self.syntax_error(msg);
        }
        self.read_token_as_label_value();
        if self.failed() {
            return None;
        }
        let value = match String::from_utf8(std::mem::take(&mut self.token)) {
            Ok(v) => v,
            Err(e) => {
                let msg = format!("invalid label value {}", go_quote_bytes(e.as_bytes()));
                return self.syntax_error(msg);
            }
        };
        let name = self.label_name.clone();
        match self.family_type() {
            Some(MetricType::Summary) if name == "quantile" => match parse_go(&value) {
                Some(q) => self.quantile = q,
                None => {
                    let msg = format!("expected float as value for 'quantile' label, got {}", go_quote(&value));
                    return self.syntax_error(msg);
                }
            },
            Some(MetricType::Histogram | MetricType::GaugeHistogram) if name == "le" => match parse_go(&value) {
                Some(b) => self.bucket = b,
                None => {
                    let msg = format!("expected float as value for 'le' label, got {}", go_quote(&value));
                    return self.syntax_error(msg);
                }
            },
            Some(MetricType::Summary | MetricType::Histogram | MetricType::GaugeHistogram) => {
                self.composite_labels.push((name.clone(), value.clone()));
            }
            _ => {}
        }
        if let Some(last) = self.pending.label.last_mut()
            && last.name.as_deref() == Some(name.as_str())
            && last.value.is_none()
        {
            last.value = Some(value.clone());
        }
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        match self.byte {
            b',' => Some(State::StartLabelName),
            b'}' if !self.has_metric => self.syntax_error("invalid metric name".into()),
            b'}' => {
                self.skip_blank_tab();
                if self.failed() {
                    return None;
                }
                Some(State::ReadingValue)
            }
            _ => {
                let msg = format!("unexpected end of label value {}", go_quote(&value));
                self.syntax_error(msg)
            }
        }
    }

    fn reading_value(&mut self) -> Option<State> {
        let family = self.family;
        if self.is_composite() {
            // Lines of one summary or histogram share a metric, found by its other labels.
            let mut key = self.composite_labels.clone();
            key.sort();
            let pending = std::mem::take(&mut self.pending);
            let metrics = &mut self.families[family].metric;
            self.metric = *self.composites.entry((family, key)).or_insert_with(|| {
                metrics.push(pending);
                metrics.len() - 1
            });
        } else {
            let metrics = &mut self.families[family].metric;
            metrics.push(std::mem::take(&mut self.pending));
            self.metric = metrics.len() - 1;
        }
        self.read_token_until_whitespace();
        if self.failed() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.token).into_owned();
        let Some(value) = parse_go(&text) else {
            return self.syntax_error(format!("expected float as value, got {}", go_quote_bytes(&self.token)));
        };
        let (ty, suffix, quantile, bucket) = (self.family_type(), self.suffix, self.quantile, self.bucket);
        let metric = &mut self.families[family].metric[self.metric];
        match ty {
            Some(MetricType::Counter) => metric.counter = Some(Counter { value: Some(value), ..Default::default() }),
            Some(MetricType::Gauge) => metric.gauge = Some(Gauge { value: Some(value) }),
            Some(MetricType::Untyped) => metric.untyped = Some(Untyped { value: Some(value) }),
            Some(MetricType::Summary) => {
                let summary = metric.summary.get_or_insert_with(Summary::default);
                match suffix {
                    Suffix::Count => summary.sample_count = Some(value as u64),
                    Suffix::Sum => summary.sample_sum = Some(value),
                    Suffix::None if !quantile.is_nan() => {
                        summary.quantile.push(Quantile { quantile: Some(quantile), value: Some(value) })
                    }
                    Suffix::None => {}
                }
            }
            Some(MetricType::Histogram | MetricType::GaugeHistogram) => {
                let histogram = metric.histogram.get_or_insert_with(Histogram::default);
                // A count that is not a whole number makes a float histogram (since
                // Pushgateway 1.10); a negative one is refused.
                let whole = (value as u64) as f64 == value;
                match suffix {
                    Suffix::Count if whole => histogram.sample_count = Some(value as u64),
                    Suffix::Count if value < 0.0 => {
                        let msg = format!("negative count for histogram {}", self.family_name());
                        return self.syntax_error(msg);
                    }
                    Suffix::Count => histogram.sample_count_float = Some(value),
                    Suffix::Sum => histogram.sample_sum = Some(value),
                    Suffix::None if bucket.is_nan() => {}
                    Suffix::None if !whole && value < 0.0 => {
                        let msg = format!("negative bucket population for histogram {}", self.family_name());
                        return self.syntax_error(msg);
                    }
                    Suffix::None => histogram.bucket.push(Bucket {
                        cumulative_count: whole.then_some(value as u64),
                        cumulative_count_float: (!whole).then_some(value),
                        upper_bound: Some(bucket),
                        ..Default::default()
                    }),
                }
            }
            _ => {
                let msg = format!("unexpected type for metric name {}", self.family_name());
                return self.syntax_error(msg);
            }
        }
        if self.byte == b'\n' {
            return Some(State::StartOfLine);
        }
        Some(State::StartTimestamp)
    }

    fn start_timestamp(&mut self) -> Option<State> {
        self.skip_blank_tab();
        if self.failed() {
            return None;
        }
        self.read_token_until_whitespace();
        if self.failed() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.token).into_owned();
        let Ok(timestamp) = text.parse::<i64>() else {
            return self.syntax_error(format!("expected integer as timestamp, got {}", go_quote_bytes(&self.token)));
        };
        self.families[self.family].metric[self.metric].timestamp_ms = Some(timestamp);
        self.read_token_until_newline(false);
        if self.failed() {
            return None;
        }
        if !self.token.is_empty() {
            return self.syntax_error(format!("spurious string after timestamp: {}", go_quote_bytes(&self.token)));
        }
        Some(State::StartOfLine)
    }

    fn reading_help(&mut self) -> Option<State> {
        if self.families[self.family].help.is_some() {
            let msg = format!("second HELP line for metric name {}", self.family_name());
            return self.syntax_error(msg);
        }
        self.read_token_until_newline(true);
        if self.failed() {
            return None;
        }
        self.families[self.family].help = Some(String::from_utf8_lossy(&self.token).into_owned());
        Some(State::StartOfLine)
    }

    fn reading_type(&mut self) -> Option<State> {
        if self.families[self.family].r#type.is_some() {
            let msg =
                format!("second TYPE line for metric name {}, or TYPE reported after samples", self.family_name());
            return self.syntax_error(msg);
        }
        self.read_token_until_newline(false);
        if self.failed() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.token).into_owned();
        let upper = text.to_ascii_uppercase();
        // prometheus/common's parser (expfmt/text_parse.go, since Pushgateway 1.6) tolerates
        // `gaugehistogram` beside the enum's own `gauge_histogram`; 1.5.1 refused it.
        let ty =
            MetricType::from_str_name(&upper).or((upper == "GAUGEHISTOGRAM").then_some(MetricType::GaugeHistogram));
        match ty {
            Some(t) => self.families[self.family].r#type = Some(t as i32),
            None => return self.syntax_error(format!("unknown metric type {}", go_quote(&text))),
        }
        Some(State::StartOfLine)
    }

    fn skip_blank_tab(&mut self) {
        while self.read_byte() {
            if !is_blank_or_tab(self.byte) {
                return;
            }
        }
    }

    fn skip_blank_tab_if_current_blank_tab(&mut self) {
        if is_blank_or_tab(self.byte) {
            self.skip_blank_tab();
        }
    }

    fn read_token_until_whitespace(&mut self) {
        self.token.clear();
        while !self.failed() && !is_blank_or_tab(self.byte) && self.byte != b'\n' {
            self.token.push(self.byte);
            self.read_byte();
        }
    }

    fn read_token_until_newline(&mut self, recognize_escapes: bool) {
        self.token.clear();
        let mut escaped = false;
        while !self.failed() {
            if recognize_escapes && escaped {
                match self.byte {
                    b'\\' => self.token.push(b'\\'),
                    b'n' => self.token.push(b'\n'),
                    other => {
                        self.syntax_error(format!("invalid escape sequence '\\{}'", char::from(other)));
                        return;
                    }
                }
                escaped = false;
            } else {
                match self.byte {
                    b'\n' => return,
                    b'\\' if recognize_escapes => escaped = true,
                    other => self.token.push(other),
                }
            }
            self.read_byte();
        }
    }

    fn read_token_as_metric_name(&mut self) {
        self.read_name(true);
    }

    fn read_token_as_label_name(&mut self) {
        self.read_name(false);
    }

    /// Reads a name from the current byte on, plain (legacy characters) or in quotes with
    /// `\\`, `\n` and `\"` escapes (expfmt/text_parse.go, readTokenAsMetricName and
    /// readTokenAsLabelName, whose quirks it keeps: a quote may open after plain characters);
    /// an empty token when the byte cannot start one.
    fn read_name(&mut self, metric: bool) {
        let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b'"' || (metric && b == b':');
        self.token.clear();
        if !start(self.byte) {
            return;
        }
        let (mut quoted, mut escaped) = (false, false);
        while !self.failed() {
            if escaped {
                if !self.push_escaped() {
                    return;
                }
                escaped = false;
            } else {
                match self.byte {
                    b'"' => {
                        quoted = !quoted;
                        if !quoted {
                            self.read_byte();
                            return;
                        }
                    }
                    b'\n' => {
                        let what = if metric { "metric name" } else { "label name" };
                        let msg = format!("{what} {} contains unescaped new-line", go_quote_bytes(&self.token));
                        self.syntax_error(msg);
                        return;
                    }
                    b'\\' => escaped = true,
                    other => self.token.push(other),
                }
            }
            // Inside quotes every byte continues the name; outside, the legacy characters.
            if !self.read_byte() || !(quoted || start(self.byte) || self.byte.is_ascii_digit()) {
                return;
            }
        }
    }

    /// The byte after a backslash in a quoted name or a label value: `\\`, `\"` or `\n` goes
    /// into the token; anything else is an error (false).
    fn push_escaped(&mut self) -> bool {
        match self.byte {
            b'\\' | b'"' => self.token.push(self.byte),
            b'n' => self.token.push(b'\n'),
            other => {
                self.syntax_error(format!("invalid escape sequence '\\{}'", char::from(other)));
                return false;
            }
        }
        true
    }

    fn read_token_as_label_value(&mut self) {
        self.token.clear();
        let mut escaped = false;
        while self.read_byte() {
            if escaped {
                if !self.push_escaped() {
                    return;
                }
                escaped = false;
                continue;
            }
            match self.byte {
                b'"' => return,
                b'\n' => {
                    let msg = format!("label value {} contains unescaped new-line", go_quote_bytes(&self.token));
                    self.syntax_error(msg);
                    return;
                }
                b'\\' => escaped = true,
                other => self.token.push(other),
            }
        }
    }

    /// Finds the family a name belongs to: its own, or that of the summary or (gauge) histogram whose
    /// `_sum`, `_count` (or `_bucket`) sample it is.
    /// False, with the error set, for a name the rules do not allow.
    fn set_or_create_family(&mut self) -> bool {
        self.suffix = Suffix::None;
        let name = match std::str::from_utf8(&self.token) {
            Ok(name) if self.rules.is_valid_metric_name(name) => name,
            _ => {
                let msg = format!("invalid metric name {}", go_quote_bytes(&self.token));
                self.syntax_error(msg);
                return false;
            }
        };
        if let Some(&i) = self.by_name.get(name) {
            self.family = i;
            return true;
        }
        let suffix = if name.ends_with("_count") {
            Suffix::Count
        } else if name.ends_with("_sum") {
            Suffix::Sum
        } else {
            Suffix::None
        };
        let base = |suffixes: &[&str]| suffixes.iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        let candidates: [(&str, &[MetricType]); 2] = [
            (base(&["_count", "_sum"]), &[MetricType::Summary]),
            (base(&["_count", "_sum", "_bucket"]), &[MetricType::Histogram, MetricType::GaugeHistogram]),
        ];
        for (base_name, wanted) in candidates {
            if let Some(&i) = self.by_name.get(base_name)
                && wanted.iter().any(|t| self.families[i].r#type == Some(*t as i32))
            {
                self.family = i;
                self.suffix = suffix;
                return true;
            }
        }
        let name = name.to_string();
        self.families.push(MetricFamily { name: Some(name.clone()), ..Default::default() });
        self.family = self.families.len() - 1;
        self.by_name.insert(name, self.family);
        true
    }
}

/// Once one count of a histogram is a float, all of them are (expfmt's normalizeHistogram).
fn all_float_or_all_whole(histogram: &mut Histogram) {
    let any_float =
        histogram.sample_count_float() != 0.0 || histogram.bucket.iter().any(|b| b.cumulative_count_float() != 0.0);
    if !any_float {
        return;
    }
    if histogram.sample_count_float() == 0.0 {
        histogram.sample_count_float = Some(histogram.sample_count() as f64);
        histogram.sample_count = None;
    }
    for bucket in histogram.bucket.iter_mut().filter(|b| b.cumulative_count_float() == 0.0) {
        bucket.cumulative_count_float = Some(bucket.cumulative_count() as f64);
        bucket.cumulative_count = None;
    }
}

fn is_blank_or_tab(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        parse(input.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_type() {
        let text = "# HELP g A gauge.\n# TYPE g gauge\ng{a=\"1\"} 3.5\n\
                    # TYPE c counter\nc 2\nu 1e10\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 1\ns{quantile=\"0.9\"} 2\ns_sum 3\ns_count 2\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
        let families = parse(text.as_bytes()).unwrap();
        let names: Vec<_> = families.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["g", "c", "u", "s", "h"]);
        assert_eq!(families[0].help(), "A gauge.");
        assert_eq!(families[0].metric[0].gauge.unwrap().value(), 3.5);
        assert_eq!(families[0].metric[0].label[0].value(), "1");
        let summary = families[3].metric[0].summary.as_ref().unwrap();
        assert_eq!((summary.quantile.len(), summary.sample_count(), summary.sample_sum()), (2, 2, 3.0));
        let histogram = families[4].metric[0].histogram.as_ref().unwrap();
        assert_eq!(histogram.bucket.len(), 2);
        assert_eq!(families[4].metric.len(), 1);
    }

    #[test]
    fn drops_families_without_samples_and_ignores_comments() {
        let families = parse(b"# TYPE x gauge\n# just a comment\n\n# UNIT x seconds\n").unwrap();
        assert!(families.is_empty());
    }

    #[test]
    fn errors_name_the_line_like_the_reference() {
        assert_eq!(err("a 1"), "text format parsing error in line 1: unexpected end of input stream");
        assert_eq!(err("a 1\r\n"), "text format parsing error in line 1: expected float as value, got \"1\\r\"");
        assert_eq!(
            err("a 1\na{b-c=\"1\"} 2\n"),
            "text format parsing error in line 2: expected '=' after label name, found '-'"
        );
        assert_eq!(err("a{1=\"x\"} 1\n"), "text format parsing error in line 1: invalid label name for metric \"a\"");
        assert_eq!(
            err("# HELP w x\n# HELP w y\n"),
            "text format parsing error in line 2: second HELP line for metric name \"w\""
        );
        assert_eq!(
            err("s 1\n# TYPE s gauge\n"),
            "text format parsing error in line 2: second TYPE line for metric name \"s\", or TYPE reported after samples"
        );
        assert_eq!(err("# TYPE f foo\n"), "text format parsing error in line 1: unknown metric type \"foo\"");
        assert_eq!(
            err("c{a=\"1\",a=\"2\"} 1\n"),
            "text format parsing error in line 1: duplicate label names for metric \"c\""
        );
        assert_eq!(
            err("c{__name__=\"x\"} 1\n"),
            "text format parsing error in line 1: label name \"__name__\" is reserved"
        );
        assert_eq!(err("a 1 3 3\n"), "text format parsing error in line 1: spurious string after timestamp: \" 3\"");
        assert_eq!(err("a 1 x\n"), "text format parsing error in line 1: expected integer as timestamp, got \"x\"");
        assert_eq!(err("-a 1\n"), "text format parsing error in line 1: invalid metric name");
    }

    #[test]
    fn rejects_invalid_utf8_label_values() {
        assert_eq!(
            parse(b"c{a=\"\xff\"} 1\n").unwrap_err().to_string(),
            "text format parsing error in line 1: invalid label value \"\\xff\""
        );
    }

    #[test]
    fn keeps_timestamps_for_the_store_to_refuse() {
        let families = parse(b"a 1 1234\n").unwrap();
        assert_eq!(families[0].metric[0].timestamp_ms, Some(1234));
    }

    #[test]
    fn never_panics_on_arbitrary_prefixes() {
        let text = b"# HELP s x\\n\\\\\n# TYPE s summary\ns{quantile=\"0.5\",x=\"a\\\"b\"} 1 2\ns_count 1\nh_bucket{le=\"x\"} 1\n";
        for end in 0..text.len() {
            let _ = parse(&text[..end]);
        }
    }
}
