//! The status page's HTTP server: `/` (HTML), `/status.json`, `/metrics` (Prometheus text).
//!
//! Read-only: there are no write endpoints. When a token is configured (always, when the
//! server listens on anything but loopback) every request must carry it, as
//! `Authorization: Bearer <token>` or `?token=<token>` (so a tablet can bookmark the page).
//! The token is compared in constant time and never logged.
//!
//! A tablet on the shop floor must not be able to take the hub down, nor a scanner on the LAN:
//! at most [`MAX_CONNECTIONS`] connections are served at once (one more is answered `503` and
//! closed), a client gets [`HEADER_READ_TIMEOUT`] to send each request's headers (which also
//! ends idle keep-alive connections), no connection lives longer than [`MAX_CONNECTION_AGE`],
//! and at most [`MAX_CONCURRENT_SNAPSHOTS`] requests build a snapshot at once (the others wait
//! their turn). Store reads go through the store's fixed pool of readers.
//!
//! With `status.tls_cert_file` and `status.tls_key_file` every connection is TLS ([`super::tls`]):
//! the handshake must finish within [`HEADER_READ_TIMEOUT`], a client speaking plain HTTP gets
//! no page, and every cookie the station app sets is marked `Secure`.

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
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Connections served at once; one more is answered `503 Service Unavailable` and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client gets to send a request's headers, on a new connection or between two
/// requests of a kept-alive one; then the connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may stay open, however busy.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// Requests building a snapshot (store reads, free space) at once.
pub const MAX_CONCURRENT_SNAPSHOTS: usize = 2;

/// What a connection over [`MAX_CONNECTIONS`] hears before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 5\r\n\
Connection: close\r\n\
Content-Length: 74\r\n\
\r\n\
503: the status page is serving its maximum of connections; retry shortly\n";

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
    #[error("the status page cannot serve TLS: {0}")]
    Tls(#[from] super::tls::TlsSetupError),
}

/// How the page is served.
#[derive(Clone)]
pub struct ServeOptions {
    /// Required on every request when set.
    pub token: Option<String>,
    /// How often the HTML page reloads itself.
    pub refresh: Duration,
    /// The station app, served beside the page under `/station` (its own sign-in; the status
    /// token is not asked for there).
    pub station_app: Option<crate::station_app::StationApp>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("refresh", &self.refresh)
            .field("station_app", &self.station_app.is_some())
            .finish()
    }
}

/// A bound, not yet serving, status server.
pub struct StatusServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for StatusServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl StatusServer {
    /// Binds `addr` (port 0 picks a free port), serving TLS with `tls`'s files when given.
    /// Refuses a non-loopback address without a token, and unusable TLS files before binding.
    pub async fn bind(
        addr: SocketAddr,
        token: Option<&str>,
        tls: Option<&crate::config::StatusTls>,
    ) -> Result<StatusServer, StatusError> {
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(StatusError::TokenRequired { addr });
        }
        let tls = match tls {
            Some(files) => Some(tokio_rustls::TlsAcceptor::from(super::tls::server_config(
                files,
            )?)),
            None => None,
        };
        if tls.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the status page and the station app are served without TLS on the LAN: staff PINs and session cookies cross it in clear; set status.tls_cert_file and status.tls_key_file");
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
            tls,
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
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{addr}/")
    }

    /// Serves until `shutdown` is cancelled, within the limits in the module header.
    pub async fn serve(
        self,
        source: StatusSource,
        options: ServeOptions,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let app = router(source, options, self.tls.is_some());
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let tracker = TaskTracker::new();
        let mut refused: u64 = 0;
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors or a connection reset before it was accepted:
                    // nothing to do but wait a moment and go on.
                    tracing::warn!(error = %e, "status page: cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                refused += 1;
                if refused.is_power_of_two() {
                    tracing::warn!(
                        refused,
                        limit = MAX_CONNECTIONS,
                        "status page: too many connections; answering 503"
                    );
                }
                // Take what the client already sent (so the close is not a reset that could
                // destroy the answer), answer, close. The answer fits the socket's send buffer;
                // if not, the client gets a close.
                let mut request = [0u8; 2048];
                let _ = stream.try_read(&mut request);
                let _ = stream.try_write(BUSY_RESPONSE);
                continue;
            };
            let app = app.clone();
            let stop = shutdown.clone();
            let tls = self.tls.clone();
            tracker.spawn(async move {
                let _permit = permit;
                match tls {
                    None => serve_connection(stream, app, stop).await,
                    Some(acceptor) => {
                        // A client that never finishes the handshake (or speaks plain HTTP)
                        // holds a connection slot no longer than one that never sends headers.
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => serve_connection(stream, app, stop).await,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "status page: TLS handshake failed")
                            }
                            Err(_) => tracing::debug!("status page: TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
        Ok(())
    }
}

/// Serves one connection (plain or TLS) within the limits in the module header.
async fn serve_connection<I>(stream: I, app: Router, stop: CancellationToken)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let age = tokio::time::sleep(MAX_CONNECTION_AGE);
    tokio::pin!(age);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.cancelled() => {}
        _ = &mut age => {}
    }
    // Finish the request in progress, if any, then close.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
}

/// Over TLS, a cookie the station app sets must never be sent back over plain HTTP.
async fn mark_cookies_secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secure = match cookie.to_str() {
            Ok(text) if !text.contains("; Secure") => {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            }
            _ => cookie,
        };
        headers.append(header::SET_COOKIE, secure);
    }
    response
}

#[derive(Clone)]
struct AppState {
    source: Arc<StatusSource>,
    token: Option<Arc<[u8; 32]>>,
    refresh: Duration,
    /// Turns to build a snapshot; see [`MAX_CONCURRENT_SNAPSHOTS`].
    snapshots: Arc<Semaphore>,
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

/// Builds the router: three read-only routes behind the token check, and the station app.
fn router(source: StatusSource, options: ServeOptions, tls: bool) -> Router {
    let app = options.station_app.clone();
    let state = AppState {
        source: Arc::new(source),
        token: options.token.map(|t| Arc::new(digest(t.as_bytes()))),
        refresh: options.refresh,
        snapshots: Arc::new(Semaphore::new(MAX_CONCURRENT_SNAPSHOTS)),
    };
    let status = Router::new()
        .route("/", get(page))
        .route("/status.json", get(status_json))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state);
    let router = match app {
        Some(app) => status.merge(crate::station_app::router(app)),
        None => status,
    };
    if tls {
        router.layer(middleware::map_response(mark_cookies_secure))
    } else {
        router
    }
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

/// A snapshot now, built by at most [`MAX_CONCURRENT_SNAPSHOTS`] requests at once.
async fn snapshot(state: &AppState) -> super::StatusSnapshot {
    // The semaphore is never closed, so the permit always comes.
    let _turn = state.snapshots.acquire().await;
    gather(&state.source, crate::clock::now()).await
}

/// The page in the language asked for with `?lang=` (zh-CN by default).
async fn page(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    let lang = uri
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("lang=")))
        .and_then(crate::catalogue::Lang::parse)
        .unwrap_or_default();
    let snapshot = snapshot(&state).await;
    with_type(
        "text/html; charset=utf-8",
        render::html(&snapshot, state.refresh, lang, state.source.timezone),
    )
}

async fn status_json(State(state): State<AppState>) -> Response {
    let snapshot = snapshot(&state).await;
    with_type("application/json", render::json(&snapshot))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let snapshot = snapshot(&state).await;
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

    #[test]
    fn the_busy_answer_is_a_complete_response() {
        let text = std::str::from_utf8(BUSY_RESPONSE).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
    }

    #[tokio::test]
    async fn a_lan_address_without_a_token_is_refused_before_binding() {
        let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let err = StatusServer::bind(addr, None, None).await.unwrap_err();
        assert!(matches!(err, StatusError::TokenRequired { .. }), "{err}");
    }
}
