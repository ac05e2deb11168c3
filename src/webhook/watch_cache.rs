//! A watch-fed cache of one kind of object, shared by the webhook's resolvers: the watch
//! retries with backoff forever, so the webhook starts and serves while the API server is
//! unreachable, and the cache keeps what it last saw meanwhile.

use futures::{FutureExt, StreamExt};
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

/// Whether the cache holds a complete list: ready once the first list is in, it then keeps the
/// last state it saw while the watch retries, as a watch cache does.
pub fn is_ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

/// A cache of every `K`, fed by a watch that retries with backoff forever; `slim` drops what
/// the resolver never reads before an object is stored.
pub fn watch_into_cache<K>(api: Api<K>, what: &'static str, slim: impl Fn(&mut K) + Send + 'static) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default()).default_backoff().modify(move |object| {
        object.meta_mut().managed_fields = None;
        slim(object);
    });
    tokio::spawn(reflector::reflector(writer, stream).for_each(move |event| async move {
        if let Err(e) = event {
            tracing::warn!(error = %e, "watching {what} failed; retrying");
        }
    }));
    store
}
