//! A native histogram's buckets as `/api/v1/metrics` lists them since Pushgateway 1.8 (integer
//! counts) and 1.10 (float counts): `[boundaries, lower, upper, count]` per populated bucket,
//! negative buckets first (farthest from zero first), then the zero bucket, then the positive
//! ones. The reference reads them with Prometheus' model/histogram bucket iterators
//! (histogram/prometheus_model.go in the Pushgateway); this follows their rules: spans place
//! the buckets, integer counts are deltas from the bucket before, float counts are absolute,
//! and the bounds are powers of 2^(2^-schema).

use std::sync::OnceLock;

use num_bigint::BigUint;
use serde_json::{Value, json};

use crate::exposition::float::to_go_string;
use crate::proto::client::{BucketSpan, Histogram};

/// The schemas of exponential buckets (Prometheus' `ExponentialSchemaMin` and `...Max`).
const SCHEMAS: std::ops::RangeInclusive<i32> = -4..=8;

/// Whether the histogram has native buckets: the reference then lists them, not the classic
/// ones.
pub fn is_native(histogram: &Histogram) -> bool {
    !histogram.positive_span.is_empty() || !histogram.negative_span.is_empty()
}

/// The count and the buckets, as the reference writes them.
pub fn count_and_buckets(h: &Histogram) -> (String, Value) {
    // A float histogram is one with a float count (`NewModelHistogram`).
    if h.sample_count_float() > 0.0 || h.zero_count_float() > 0.0 {
        let positive = counts(&h.positive_span, h.positive_count.iter().copied());
        let negative = counts(&h.negative_span, h.negative_count.iter().copied());
        let buckets = buckets(h, positive, negative, h.zero_count_float(), to_go_string);
        return (to_go_string(h.sample_count_float()), buckets);
    }
    // Integer counts are deltas; the running sum is the count, wrapping as Go's conversion of
    // a negative int64 to uint64 does for a histogram that is not valid.
    let running = |deltas: &[i64]| {
        let mut sum = 0i64;
        deltas
            .iter()
            .map(move |d| {
                sum = sum.wrapping_add(*d);
                sum as u64
            })
            .collect::<Vec<u64>>()
    };
    let positive = counts(&h.positive_span, running(&h.positive_delta).into_iter());
    let negative = counts(&h.negative_span, running(&h.negative_delta).into_iter());
    let buckets = buckets(h, positive, negative, h.zero_count(), |c: u64| c.to_string());
    (h.sample_count().to_string(), buckets)
}

/// Each bucket's index and count, placed by the spans (Prometheus' bucket iterator, step for
/// step): the first bucket's index is the first span's offset, each later bucket's the one
/// before plus one, plus the next span's offset where a span ends (spans of no buckets too);
/// a bucket without its count (a histogram that is not valid) ends the iteration.
fn counts<C>(spans: &[BucketSpan], mut counts: impl Iterator<Item = C>) -> Vec<(i32, C)> {
    let mut out = Vec::new();
    let (mut span_at, mut in_span, mut index) = (0usize, 0u32, 0i32);
    while let Some(mut span) = spans.get(span_at) {
        index = if out.is_empty() { span.offset() } else { index.wrapping_add(1) };
        while in_span >= span.length() {
            in_span = 0;
            span_at += 1;
            match spans.get(span_at) {
                Some(next) => span = next,
                None => return out,
            }
            index = index.wrapping_add(span.offset());
        }
        match counts.next() {
            Some(count) => out.push((index, count)),
            None => return out,
        }
        in_span += 1;
    }
    out
}

fn buckets<C: Copy + PartialEq + Default>(
    h: &Histogram,
    positive: Vec<(i32, C)>,
    negative: Vec<(i32, C)>,
    zero_count: C,
    write: impl Fn(C) -> String,
) -> Value {
    let schema = h.schema();
    if !SCHEMAS.contains(&schema) {
        // Custom bucket schemas carry their bounds in fields the Pushgateway does not read.
        return json!([]);
    }
    let row = |boundaries: u8, lower: f64, upper: f64, count: C| {
        json!([boundaries, to_go_string(lower), to_go_string(upper), write(count)])
    };
    let mut rows = Vec::new();
    // Negative buckets, from the one farthest from zero: [lower, upper).
    for &(index, count) in negative.iter().rev().filter(|(_, c)| *c != C::default()) {
        rows.push(row(1, -bound(index, schema), -bound(index - 1, schema), count));
    }
    if zero_count != C::default() {
        rows.push(row(3, -h.zero_threshold(), h.zero_threshold(), zero_count));
    }
    // Positive buckets: (lower, upper].
    for &(index, count) in positive.iter().filter(|(_, c)| *c != C::default()) {
        rows.push(row(0, bound(index - 1, schema), bound(index, schema), count));
    }
    Value::Array(rows)
}

/// The upper bound of bucket `index` (Prometheus' getBoundExponential): 2^(index·2^-schema),
/// with the bucket below the one for infinities bounded by the largest float.
fn bound(index: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = i64::from(index) << -schema;
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let frac_index = index & ((1 << schema) - 1);
    let frac = frac(frac_index, schema);
    let exp = i64::from(index >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// 2^(k·2^-schema) / 2, a bound in [0.5, 1), rounded to the nearest float as Prometheus'
/// precalculated table (`exponentialBounds`) has it: the 256 fractions of schema 8, which hold
/// those of every smaller schema.
fn frac(k: i32, schema: i32) -> f64 {
    static FRACTIONS: OnceLock<Vec<f64>> = OnceLock::new();
    let fractions = FRACTIONS.get_or_init(|| (0..256).map(nearest_fraction).collect());
    fractions[(k << (8 - schema)) as usize]
}

/// The float nearest to v = 2^(k/256 - 1). `exp2` may miss it by a unit in the last place, so
/// its answer is corrected with exact integers: a float x = M·2^-53 in [0.5, 1) is the nearest
/// when v lies between the midpoints (2M-1)·2^-54 and (2M+1)·2^-54, and raised to the 256th
/// power that is (2M-1)^256 < 2^(k+53·256) < (2M+1)^256.
fn nearest_fraction(k: u32) -> f64 {
    let target = BigUint::from(1u8) << (k + 53 * 256) as usize;
    let midpoint_power = |twice_m: u64| BigUint::from(twice_m).pow(256);
    let mut mantissa = ((f64::from(k) / 256.0).exp2() / 2.0 * 2f64.powi(53)) as u64;
    while midpoint_power(2 * mantissa + 1) < target {
        mantissa += 1;
    }
    while midpoint_power(2 * mantissa - 1) > target {
        mantissa -= 1;
    }
    mantissa as f64 * 2f64.powi(-53)
}

/// `x · 2^exp` without overflowing on the way (Go's math.Ldexp).
fn ldexp(mut x: f64, mut exp: i64) -> f64 {
    while exp > 1000 {
        x *= 2f64.powi(1000);
        exp -= 1000;
    }
    while exp < -1000 {
        x *= 2f64.powi(-1000);
        exp += 1000;
    }
    x * 2f64.powi(exp as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset: Some(offset), length: Some(length) }
    }

    // Schema 0 (bounds are powers of two), a zero bucket, two positive buckets with a gap,
    // one negative.
    #[test]
    fn lists_buckets_around_zero() {
        let h = Histogram {
            sample_count: Some(6),
            sample_sum: Some(1.5),
            schema: Some(0),
            zero_threshold: Some(0.001),
            zero_count: Some(1),
            positive_span: vec![span(0, 1), span(1, 1)],
            positive_delta: vec![2, 1],
            negative_span: vec![span(1, 1)],
            negative_delta: vec![1],
            ..Default::default()
        };
        let (count, buckets) = count_and_buckets(&h);
        assert_eq!(count, "6");
        assert_eq!(
            buckets,
            json!([[1, "-2", "-1", "1"], [3, "-0.001", "0.001", "1"], [0, "0.5", "1", "2"], [0, "2", "4", "3"],])
        );
    }

    #[test]
    fn bounds_of_the_schemas() {
        assert_eq!(bound(0, 0), 1.0);
        assert_eq!(bound(1, 3), 1.0905077326652577);
        // sqrt(2) = 1.41421356237309504880...: the nearest float, which exp2 may miss.
        assert_eq!(bound(1, 1), std::f64::consts::SQRT_2);
        assert_eq!(bound(-1, -1), 0.25);
        assert_eq!(bound(4096, 2), f64::MAX);
        assert_eq!(bound(1024, 0), f64::MAX);
        assert!(bound(1025, 0).is_infinite());
    }
}
