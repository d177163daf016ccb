//! The status page's HTTP server: `/` (HTML), `/status.json`, `/metrics` (Prometheus text).
//!
//! Read-only: there are no write endpoints. When a token is configured (always, when the
//! server listens on anything but loopback) every request must carry it, as
//! `Authorization: Bearer <token>` or `?token=<token>` (so a tablet can bookmark the page).
//! The token is compared in constant time and never logged.

use super::{StatusSource, gather, render};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "cannot listen on {addr} for the status page: {source}; check status.listen (is the address on this box, is the port free?)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "the status page on {addr} needs a token because the address is not loopback; set status.token"
    )]
    TokenRequired { addr: SocketAddr },
}

/// How the page is served.
#[derive(Clone)]
pub struct ServeOptions {
    /// Required on every request when set.
    pub token: Option<String>,
    /// How often the HTML page reloads itself.
    pub refresh: Duration,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// A bound, not yet serving, status server.
#[derive(Debug)]
pub struct StatusServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl StatusServer {
    /// Binds `addr` (port 0 picks a free port). Refuses a non-loopback address without a token.
    pub async fn bind(addr: SocketAddr, token: Option<&str>) -> Result<StatusServer, StatusError> {
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(StatusError::TokenRequired { addr });
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StatusError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StatusError::Bind { addr, source })?;
        Ok(StatusServer {
            listener,
            local_addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The page's URL without the token (safe to log). An unspecified address (0.0.0.0, ::) is
    /// shown as loopback, which reaches it from the box itself.
    pub fn url(&self) -> String {
        let mut addr = self.local_addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        format!("http://{addr}/")
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(
        self,
        source: StatusSource,
        options: ServeOptions,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let app = router(source, options);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

#[derive(Clone)]
struct AppState {
    source: Arc<StatusSource>,
    token: Option<Arc<[u8; 32]>>,
    refresh: Duration,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Compares two tokens without leaking through timing how much of them matched: both are
/// hashed to a fixed length and every byte is compared.
fn token_matches(expected: &[u8; 32], offered: &str) -> bool {
    let offered = digest(offered.as_bytes());
    expected
        .iter()
        .zip(offered.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Builds the router: three read-only routes behind the token check.
fn router(source: StatusSource, options: ServeOptions) -> Router {
    let state = AppState {
        source: Arc::new(source),
        token: options.token.map(|t| Arc::new(digest(t.as_bytes()))),
        refresh: options.refresh,
    };
    Router::new()
        .route("/", get(page))
        .route("/status.json", get(status_json))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

fn offered_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer.or_else(|| {
        query?
            .split('&')
            .find_map(|pair| pair.strip_prefix("token="))
    })
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.token {
        let offered = offered_token(request.headers(), request.uri().query());
        if !offered.is_some_and(|t| token_matches(expected, t)) {
            // Slow down guessing; a real token is long enough that this is belt and braces.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut response = (
                StatusCode::UNAUTHORIZED,
                "401 Unauthorized: this status page needs its token (?token=... or Authorization: Bearer ...)\n",
            )
                .into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hub status\""),
            );
            return response;
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn with_type(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn page(State(state): State<AppState>) -> Response {
    let snapshot = gather(&state.source, crate::clock::now()).await;
    with_type(
        "text/html; charset=utf-8",
        render::html(&snapshot, state.refresh),
    )
}

async fn status_json(State(state): State<AppState>) -> Response {
    let snapshot = gather(&state.source, crate::clock::now()).await;
    with_type("application/json", render::json(&snapshot))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = gather(&state.source, crate::clock::now()).await;
    with_type(
        "text/plain; version=0.0.4; charset=utf-8",
        render::metrics(&snapshot),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_exactly() {
        let expected = digest(b"0123456789abcdef");
        assert!(token_matches(&expected, "0123456789abcdef"));
        assert!(!token_matches(&expected, "0123456789abcdeF"));
        assert!(!token_matches(&expected, "0123456789abcdef0"));
        assert!(!token_matches(&expected, ""));
    }

    #[test]
    fn the_token_is_taken_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(offered_token(&headers, Some("a=1&token=xyz")), Some("xyz"));
        assert_eq!(offered_token(&headers, Some("a=1")), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(offered_token(&headers, Some("token=xyz")), Some("abc"));
    }

    #[tokio::test]
    async fn a_lan_address_without_a_token_is_refused_before_binding() {
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = StatusServer::bind(addr, None).await.unwrap_err();
        assert!(matches!(err, StatusError::TokenRequired { .. }), "{err}");
    }
}
