//! Central's read-only web endpoints, served by `central run --http ADDR`: the fleet page
//! (`/`), the same as JSON (`/fleet.json`) and Prometheus metrics (`/metrics`). The hub's status
//! page conventions: read-only, a token required whenever the address is not loopback
//! (`Authorization: Bearer <token>` or `?token=`), compared in constant time and never logged,
//! at most 64 connections, a header timeout.

use crate::fleet::FleetView;
use crate::metrics::Metrics;
use crate::store::{CentralDb, EventStore, PgStore, StoreError};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

const MAX_CONNECTIONS: usize = 64;

/// Where the fleet view is read from.
pub enum FleetSource {
    Sqlite(PathBuf),
    /// A connection of its own (opened on first use, again after a failure).
    Postgres(String, Box<Mutex<Option<PgStore>>>),
}

impl FleetSource {
    pub fn postgres(config: &str) -> FleetSource {
        FleetSource::Postgres(config.to_owned(), Box::new(Mutex::new(None)))
    }

    /// The fleet now (blocking: call from a blocking thread).
    pub fn fleet(&self, now_ms: i64) -> Result<FleetView, StoreError> {
        let day = now_ms.div_euclid(86_400_000);
        let rows = match self {
            FleetSource::Sqlite(path) => match CentralDb::open_read_only(path)? {
                Some(db) => db.fleet_rows(day)?,
                None => Vec::new(),
            },
            FleetSource::Postgres(config, store) => {
                let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
                if store.is_none() {
                    *store = Some(PgStore::open_for_reading(config)?);
                }
                let rows = store.as_ref().expect("opened").fleet_rows(day);
                if rows.is_err() {
                    *store = None;
                }
                rows?
            }
        };
        Ok(FleetView::from_rows(rows, now_ms))
    }
}

/// Refused before binding: a non-loopback address needs a token.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(
        "the fleet page on {0} needs a token because the address is not loopback; pass --http-token-file"
    )]
    TokenRequired(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound listener for the fleet page.
pub struct WebServer {
    listener: tokio::net::TcpListener,
}

impl WebServer {
    pub async fn bind(addr: SocketAddr, token: Option<&str>) -> Result<WebServer, WebError> {
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(WebError::TokenRequired(addr));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })?;
        Ok(WebServer { listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(
        self,
        source: FleetSource,
        metrics: Arc<Metrics>,
        token: Option<String>,
        shutdown: CancellationToken,
    ) {
        let state = AppState {
            source: Arc::new(source),
            metrics,
            token: token.map(|t| Arc::new(digest(t.as_bytes()))),
        };
        let app = Router::new()
            .route("/", get(page))
            .route("/fleet.json", get(fleet_json))
            .route("/metrics", get(metrics_text))
            .layer(middleware::from_fn_with_state(state.clone(), require_token))
            .with_state(state);
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                drop(stream);
                continue;
            };
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10));
                let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
            });
        }
    }
}

#[derive(Clone)]
struct AppState {
    source: Arc<FleetSource>,
    metrics: Arc<Metrics>,
    token: Option<Arc<[u8; 32]>>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// Compares two tokens in constant time (both hashed to a fixed length first).
fn token_matches(expected: &[u8; 32], offered: &str) -> bool {
    let offered = digest(offered.as_bytes());
    expected
        .iter()
        .zip(offered.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
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
            tokio::time::sleep(Duration::from_millis(200)).await;
            return (
                StatusCode::UNAUTHORIZED,
                "401 Unauthorized: the fleet page needs its token (?token=... or Authorization: Bearer ...)\n",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn view(state: &AppState) -> Result<FleetView, Response> {
    let source = state.source.clone();
    match tokio::task::spawn_blocking(move || source.fleet(now_ms())).await {
        Ok(Ok(view)) => Ok(view),
        Ok(Err(e)) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("503: cannot read central's database: {e}\n"),
        )
            .into_response()),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR.into_response()),
    }
}

async fn page(State(state): State<AppState>) -> Response {
    match view(&state).await {
        Ok(v) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            crate::fleet::html(&v, 10),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn fleet_json(State(state): State<AppState>) -> Response {
    match view(&state).await {
        Ok(v) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&v).unwrap_or_default(),
        )
            .into_response(),
        Err(r) => r,
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    // The consumer's counters always; the fleet's gauges when the database answers.
    let fleet = view(&state).await.ok();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(fleet.as_ref()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_exactly() {
        let expected = digest(b"0123456789abcdef");
        assert!(token_matches(&expected, "0123456789abcdef"));
        assert!(!token_matches(&expected, "0123456789abcdeF"));
        assert!(!token_matches(&expected, ""));
    }

    #[tokio::test]
    async fn a_lan_address_without_a_token_is_refused_before_binding() {
        let err = WebServer::bind("0.0.0.0:0".parse().unwrap(), None)
            .await
            .err()
            .expect("refused");
        assert!(err.to_string().contains("needs a token"), "{err}");
        WebServer::bind("127.0.0.1:0".parse().unwrap(), None)
            .await
            .expect("loopback needs none");
    }
}
