//! A client's push on its way into the store: every check it must pass, in the order they run.
//!
//! The order is observable, and kept: a push that breaks two rules is refused for the first one,
//! and the status and message the client gets depend on which (a push with timestamps to a new
//! group in a full gateway gets 507 for the group count, not 400 for its timestamps). The HTTP
//! edge has already read the grouping key from the URL, read the body within
//! `--push.max-body-bytes` (before and after gunzipping) and parsed it; then:
//!
//! 1. [`prepare`], outside the store's lock: the push made ready ([`PreparedPush`]), then held
//!    to the limits it can be held to on its own: its series, then its label values
//!    ([`Limits::check_push`]). A refusal leaves the store untouched.
//! 2. [`apply`], under the lock: room for the push's group when it would create one
//!    ([`Limits::check_groups`]); a refusal leaves the store untouched.
//! 3. Then [`Store::apply_prepared`]: no pushed sample may carry a timestamp, then the push must
//!    be consistent with itself and with the store ([`consistency`](super::consistency)). A
//!    refusal records the group's failure time; otherwise the push is kept.
//!
//! A group restored from the store file goes through step 3 only (`Store::restore`): limits
//! bind what clients push, not what the gateway already acknowledged.

use super::clock::Nanos;
use super::grouping::GroupingKey;
use super::groups::{PushError, Store};
use super::limits::{LimitError, Limits};
use super::prepared_push::{PreparedPush, PushMethod, SeriesHasher};
use crate::proto::client::MetricFamily;

/// Why a push was refused under the store's lock.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// No room for another group: the store is untouched.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Invalid or inconsistent: the group's failure time is recorded.
    #[error(transparent)]
    Invalid(#[from] PushError),
}

/// Step 1, outside the store's lock: the push made ready, then held to the limits it can be held
/// to on its own.
pub fn prepare(
    hasher: &SeriesHasher,
    limits: &Limits,
    key: GroupingKey,
    method: PushMethod,
    families: Vec<MetricFamily>,
) -> Result<PreparedPush, LimitError> {
    let push = PreparedPush::new(hasher, key, method, families);
    limits.check_push(&push)?;
    Ok(push)
}

/// Steps 2 and 3, under the store's lock: room for the group, then the push's own rules and its
/// consistency with the store, then kept. What the store does not keep stays in `push`, to be
/// dropped outside the lock.
pub fn apply(store: &mut Store, limits: &Limits, push: &mut PreparedPush, now: Nanos) -> Result<(), Refusal> {
    limits.check_groups(store, &push.key)?;
    store.apply_prepared(push, now)?;
    Ok(())
}
