//! Tokens the API server has already verified, so that a sidecar that asks the relay again (its
//! first question does not wait; the next ones do, and a retry repeats them) costs one
//! TokenReview, not one per question. kube-apiserver caches its own token authentications the
//! same way (staging/src/k8s.io/apiserver/pkg/authentication/token/cache/cached_token_authenticator.go):
//! keyed by an HMAC of the token under a random key, so the cache holds no usable token, for a
//! short time, never past the token's own expiry.
//!
//! Only successes are kept: a refused token is reviewed again each time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use ring::hmac;
use tokio::time::Instant;

/// How long a verification is trusted; a projected token lives for 10 minutes at least.
const TRUSTED_FOR: Duration = Duration::from_secs(60);

/// The Pod a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

pub struct VerifiedTokens {
    key: hmac::Key,
    capacity: usize,
    verified: Mutex<HashMap<[u8; 32], (TokenPod, Instant)>>,
}

impl VerifiedTokens {
    /// Keeps at most `capacity` verifications.
    pub fn new(capacity: usize) -> VerifiedTokens {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system's random source works");
        VerifiedTokens { key, capacity, verified: Mutex::new(HashMap::new()) }
    }

    /// The Pod of a token verified a moment ago.
    pub fn get(&self, token: &str) -> Option<TokenPod> {
        let tag = self.tag(token);
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        match verified.get(&tag) {
            Some((pod, until)) if Instant::now() < *until => Some(pod.clone()),
            Some(_) => {
                verified.remove(&tag);
                None
            }
            None => None,
        }
    }

    /// Remembers that the API server verified `token` as `pod`'s, until the token expires or
    /// [`TRUSTED_FOR`] passes.
    pub fn insert(&self, token: &str, pod: TokenPod) {
        let now = Instant::now();
        let until = match seconds_left(token) {
            Some(left) => now + TRUSTED_FOR.min(left),
            None => now + TRUSTED_FOR,
        };
        let tag = self.tag(token);
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= self.capacity {
            verified.retain(|_, (_, until)| now < *until);
        }
        // Still full: this one is reviewed again next time, which is only slower.
        if verified.len() < self.capacity {
            verified.insert(tag, (pod, until));
        }
    }

    /// Verifications held (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.verified.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn tag(&self, token: &str) -> [u8; 32] {
        let mut tag = [0; 32];
        tag.copy_from_slice(hmac::sign(&self.key, token.as_bytes()).as_ref());
        tag
    }
}

/// What is left of a JWT's life by its `exp` claim, read without verifying it: only a token the
/// API server has just verified gets here, and an unreadable claim falls back to [`TRUSTED_FOR`].
fn seconds_left(token: &str) -> Option<Duration> {
    let claims = token.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<serde_json::Value>(&claims).ok()?.get("exp")?.as_i64()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(u64::try_from(exp).ok()?.saturating_sub(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> TokenPod {
        TokenPod { namespace: "ops".into(), name: name.into(), uid: format!("uid-{name}") }
    }

    fn jwt(exp: u64) -> String {
        let encode = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!("{}.{}.sig", encode(r#"{"alg":"RS256"}"#), encode(&format!(r#"{{"exp":{exp}}}"#)))
    }

    fn unix_now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn a_verified_token_names_its_pod_and_no_other_token_does() {
        let tokens = VerifiedTokens::new(10);
        tokens.insert("token-a", pod("a"));
        assert_eq!(tokens.get("token-a"), Some(pod("a")));
        assert_eq!(tokens.get("token-b"), None);
        assert_eq!(tokens.get("token-a "), None);
    }

    #[test]
    fn a_token_is_trusted_no_longer_than_it_lives() {
        let tokens = VerifiedTokens::new(10);
        let expired = jwt(unix_now() - 5);
        tokens.insert(&expired, pod("a"));
        assert_eq!(tokens.get(&expired), None, "an expired token is reviewed again (and refused)");
        let living = jwt(unix_now() + 600);
        tokens.insert(&living, pod("b"));
        assert_eq!(tokens.get(&living), Some(pod("b")));
        assert_eq!(seconds_left(&living).map(|d| d.as_secs() > 590), Some(true));
        assert_eq!(seconds_left("not-a-jwt"), None);
        assert_eq!(seconds_left("a.!!!.c"), None);
    }

    #[test]
    fn a_full_cache_sweeps_the_expired_and_then_stops_caching() {
        let tokens = VerifiedTokens::new(2);
        tokens.insert(&jwt(unix_now() - 1), pod("old"));
        tokens.insert("token-a", pod("a"));
        tokens.insert("token-b", pod("b"));
        assert_eq!(tokens.len(), 2, "the expired one made room");
        tokens.insert("token-c", pod("c"));
        assert_eq!((tokens.get("token-c"), tokens.get("token-a")), (None, Some(pod("a"))));
    }
}
