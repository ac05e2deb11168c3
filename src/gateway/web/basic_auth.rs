//! Basic auth and the file's response headers, as a layer around every route: users are checked
//! against their bcrypt hashes as the toolkit checks them, and a verified password is remembered
//! so that a scrape does not pay for bcrypt every time.
//!
//! It uses axum, as otherwise only http/ and server.rs do: the layer wraps the gateway's router
//! (server.rs applies it), and the toolkit's 401 is an axum response.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

use super::file::WebConfig;

/// Wraps every route with the file's headers and, when it names users, basic auth.
pub fn protect(app: Router, config: &WebConfig) -> Router {
    if config.users.is_empty() && config.headers.is_empty() {
        return app;
    }
    let guard = Arc::new(Guard {
        users: config.users.clone(),
        headers: config.headers.clone(),
        verified: Mutex::new(HashSet::new()),
    });
    app.layer(axum::middleware::from_fn_with_state(guard, guard_request))
}

struct Guard {
    users: BTreeMap<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// SHA-256 of user, hash and password of the credentials bcrypt accepted: bcrypt costs tens
    /// of milliseconds (far more on a Pi), too much for every scrape. Bounded by clearing.
    verified: Mutex<HashSet<Vec<u8>>>,
}

/// Checked against when the user is unknown, so that the answer takes as long as for a known
/// user (the toolkit's constant).
const DUMMY_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
const MAX_VERIFIED: usize = 100;

impl Guard {
    async fn allows(self: &Arc<Self>, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else { return false };
        let known = self.users.get(&user);
        let hash = known.map_or(DUMMY_HASH, String::as_str).to_owned();
        let key = cache_key(&user, &hash, &password);
        if known.is_some() && self.verified.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return true;
        }
        // bcrypt is slow on purpose: off the async threads.
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if matches && known.is_some() {
            let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if verified.len() >= MAX_VERIFIED {
                verified.clear();
            }
            verified.insert(key);
        }
        matches && known.is_some()
    }
}

/// `Basic base64(user:password)`, as Go's `Request.BasicAuth` reads it.
fn basic_credentials(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = value.as_bytes();
    let encoded = value.get(..6).filter(|p| p.eq_ignore_ascii_case(b"Basic ")).map(|_| &value[6..])?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

fn cache_key(user: &str, hash: &str, password: &[u8]) -> Vec<u8> {
    let data = [user.as_bytes(), b":", hash.as_bytes(), b":", password].concat();
    // SHA-256 from the TLS provider already linked in, so the cache holds no password.
    match rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13() {
        Some(suite) => suite.common.hash_provider.hash(&data).as_ref().to_vec(),
        None => data,
    }
}

async fn guard_request(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    let allowed = guard.users.is_empty() || guard.allows(request.headers().get(header::AUTHORIZATION)).await;
    let mut response = if allowed { next.run(request).await } else { unauthorized() };
    for (name, value) in &guard.headers {
        response.headers_mut().entry(name.clone()).or_insert_with(|| value.clone());
    }
    response
}

/// Go's `http.Error(w, "Unauthorized", 401)` after `WWW-Authenticate: Basic`.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Basic"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from("Unauthorized\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_as_go_reads_them() {
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(basic_credentials(&header("basic YTpiOmM=")), Some(("a".to_owned(), b"b:c".to_vec())));
        assert_eq!(basic_credentials(&header("Bearer YTpi")), None);
        assert_eq!(basic_credentials(&header("Basic !!")), None);
    }

    #[tokio::test]
    async fn a_verified_password_is_remembered_and_a_wrong_one_is_not() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let guard = Arc::new(Guard {
            users: BTreeMap::from([("alice".to_owned(), hash)]),
            headers: Vec::new(),
            verified: Mutex::new(HashSet::new()),
        });
        let basic =
            |s: &str| HeaderValue::from_str(&format!("Basic {}", base64::prelude::BASE64_STANDARD.encode(s))).unwrap();
        assert!(guard.allows(Some(&basic("alice:secret"))).await);
        assert!(guard.allows(Some(&basic("alice:secret"))).await);
        assert_eq!(guard.verified.lock().unwrap().len(), 1);
        assert!(!guard.allows(Some(&basic("alice:wrong"))).await);
        assert!(!guard.allows(Some(&basic("bob:secret"))).await);
        assert!(!guard.allows(None).await);
    }
}
