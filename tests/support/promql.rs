//! A PromQL tokenizer for the tests that ask which series an expression reads
//! (tests/alert_rules.rs, tests/grafana_dashboard.rs). It knows the lexical structure only:
//! strings, `{…}` matchers, `[…]` ranges, numbers and durations, words, and the label lists of
//! `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`. What a word means is each test's.

/// Aggregation operators: a word before `(` or `by`/`without`, never a metric name.
const AGGREGATORS: &[&str] =
    &["sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"];
/// The words followed by a list of label names.
const GROUPINGS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Binary operators, modifiers and literals spelt as words.
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"];

/// Whether `word` is PromQL's own (an aggregator, a grouping or a keyword; any case), never a
/// metric name.
pub fn is_keyword(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    [AGGREGATORS, GROUPINGS, KEYWORDS].iter().any(|words| words.contains(&lower.as_str()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An identifier: a metric name, a function, an aggregator, a keyword.
    Word(String),
    /// A selector's matchers, braces included.
    Matchers(String),
    /// The label names after a grouping word (the word is the token before), parentheses included.
    LabelList(String),
    /// `(`, which makes the word before it a function or an aggregator.
    Open,
    /// A string, a number or duration, a `[…]` range or subquery, an operator or `)`.
    Other,
}

/// The tokens of `expr`, whitespace skipped.
pub fn tokens(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
            out.push(Token::Other);
        } else if c == '{' {
            let end = skip_balanced(&chars, i, '{', '}');
            out.push(Token::Matchers(chars[i..end].iter().collect()));
            i = end;
        } else if c == '[' {
            i = skip_balanced(&chars, i, '[', ']');
            out.push(Token::Other);
        } else if c == '(' {
            let grouping =
                matches!(out.last(), Some(Token::Word(w)) if GROUPINGS.contains(&w.to_ascii_lowercase().as_str()));
            if grouping {
                let end = skip_balanced(&chars, i, '(', ')');
                out.push(Token::LabelList(chars[i..end].iter().collect()));
                i = end;
            } else {
                out.push(Token::Open);
                i += 1;
            }
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Other);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Other);
            i += 1;
        }
    }
    out
}

/// Skips from an opening bracket at `i` past its matching close, strings included.
fn skip_balanced(chars: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i),
            c if c == open => {
                depth += 1;
                i += 1;
            }
            c if c == close => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    panic!("unbalanced {open}{close} in {:?}", chars.iter().collect::<String>())
}

/// The index after the string literal that starts at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() && chars[j] != quote {
        j += if chars[j] == '\\' && quote != '`' { 2 } else { 1 };
    }
    j + 1
}
