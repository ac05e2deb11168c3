//! The gateway's clock. Every time the store keeps is a [`Nanos`], Unix nanoseconds; these are
//! its conversions to and from the clocks around it: the system's, the scrape's seconds, the
//! JSON API's RFC 3339 and the pages' timestamps. One module, so that every part of the gateway
//! reads time the same way; in the store's room, because the store keeps its times in `Nanos`
//! and imports nothing outside its room. The store never reads the system clock itself: callers
//! pass `now`.

use std::time::SystemTime;

use jiff::Timestamp;

/// Unix time in nanoseconds; 0 means "never".
pub type Nanos = i64;

/// The system's time now, as the store keeps times.
pub fn now() -> Nanos {
    nanos_since_epoch(SystemTime::now())
}

pub fn nanos_since_epoch(t: SystemTime) -> Nanos {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as Nanos)
}

pub fn seconds(nanos: Nanos) -> f64 {
    nanos as f64 / 1e9
}

/// RFC 3339 with nanoseconds, in UTC, as Go's `time.RFC3339Nano` writes it.
pub fn rfc3339(nanos: Nanos) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .map_or_else(|_| "0001-01-01T00:00:00Z".into(), |t| t.to_string())
}

/// Unix seconds as a timestamp, for display; `None` when out of range.
pub fn timestamp(seconds: f64) -> Option<Timestamp> {
    Timestamp::from_nanosecond((seconds * 1e9) as i128).ok()
}
