//! Sessions: a random token in an HttpOnly, SameSite=Strict cookie (Secure on TLS
//! connections), a CSRF token per session that every form carries, and a fresh token
//! at login so a session id planted before login is worth nothing after it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};

/// The cookie's name.
pub const COOKIE: &str = "sie_session";

/// A session unused this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A session ends this long after login, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at most; past it the oldest anonymous ones go first, so a flood of
/// login-page visits cannot push out logged-in admins or fill memory.
const MAX_SESSIONS: usize = 10_000;

/// One browser's session: anonymous (the login form's CSRF token only) or logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: Option<String>,
    pub csrf: String,
    /// The domain chosen after login; `None` shows all the user's domains.
    pub domain: Option<String>,
    created: Instant,
    last_seen: Instant,
}

/// Every live session, by token.
#[derive(Debug, Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// The session of `token`, if it is live; touching it keeps it alive.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let live = map.get(token).is_some_and(|s| is_live(s, now));
        if !live {
            map.remove(token);
            return None;
        }
        let session = map.get_mut(token)?;
        session.last_seen = now;
        Some(session.clone())
    }

    /// A new anonymous session (for the login form); returns its token.
    pub fn start_anonymous(&self) -> (String, Session) {
        self.insert(None)
    }

    /// Logs `user` in: the old session (if any) ends, and a new token is issued.
    pub fn login(&self, old_token: Option<&str>, user: &str) -> (String, Session) {
        if let Some(old) = old_token {
            self.end(old);
        }
        self.insert(Some(user.to_string()))
    }

    pub fn set_domain(&self, token: &str, domain: Option<String>) {
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(session) = map.get_mut(token) {
            session.domain = domain;
        }
    }

    pub fn end(&self, token: &str) {
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(token);
    }

    fn insert(&self, user: Option<String>) -> (String, Session) {
        let now = Instant::now();
        let session = Session {
            user,
            csrf: random_token(),
            domain: None,
            created: now,
            last_seen: now,
        };
        let token = random_token();
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| is_live(s, now));
        }
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .filter(|(_, s)| s.user.is_none())
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(t, _)| t.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), session.clone());
        (token, session)
    }
}

fn is_live(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last_seen) < IDLE_TIMEOUT
        && now.duration_since(session.created) < MAX_AGE
}

/// 32 random bytes from the OS, hex: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session token in a request's `Cookie` headers, if any.
pub fn token_from_cookies<'a>(headers: impl Iterator<Item = &'a str>) -> Option<String> {
    headers
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that stores `token` (or, with `None`, removes the cookie).
pub fn set_cookie(token: Option<&str>, secure: bool) -> String {
    let mut cookie = cookie::Cookie::new(COOKIE, token.unwrap_or("").to_string());
    cookie.set_http_only(true);
    cookie.set_same_site(cookie::SameSite::Strict);
    cookie.set_path("/");
    cookie.set_secure(secure);
    if token.is_none() {
        cookie.set_max_age(cookie::time::Duration::ZERO);
    }
    cookie.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_replaces_the_token_and_logout_ends_it() {
        let sessions = Sessions::default();
        let (anonymous, first) = sessions.start_anonymous();
        assert!(first.user.is_none());
        let (token, session) = sessions.login(Some(&anonymous), "rick");
        assert_ne!(token, anonymous);
        assert_ne!(session.csrf, first.csrf);
        assert!(
            sessions.get(&anonymous).is_none(),
            "a planted id dies at login"
        );
        assert_eq!(sessions.get(&token).unwrap().user.as_deref(), Some("rick"));
        sessions.set_domain(&token, Some("example.org".into()));
        assert_eq!(
            sessions.get(&token).unwrap().domain.as_deref(),
            Some("example.org")
        );
        sessions.end(&token);
        assert!(sessions.get(&token).is_none());
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let plain = set_cookie(Some("abc"), false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict"));
        assert!(!plain.contains("Secure"));
        assert!(set_cookie(Some("abc"), true).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
        let found = token_from_cookies(["a=1; sie_session=xyz; b=2"].into_iter());
        assert_eq!(found.as_deref(), Some("xyz"));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd"));
        assert_eq!(random_token().len(), 64);
    }
}
