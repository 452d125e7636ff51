//! The HTTP API of `durable`, in the style of Azure Durable Functions: start orchestrations,
//! query, list and purge instances, raise events, terminate/suspend/resume/rewind, signal
//! and read entities, see which orchestrator versions have instances in flight and which
//! entries the backend could not read (dead letters), over HTTP with JSON. It needs no user code: it is a [`Client`] behind [axum](https://docs.rs/axum)
//! routes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use durable_http::HttpConfig;
//! let backend = durable_runtime::backend::Memory::new();
//! // … start a `Worker` on `backend.clone()` with your orchestrators, activities and entities …
//! let client = durable_runtime::Client::new(backend);
//! durable_http::serve(client, HttpConfig::new(), durable_http::DEFAULT_ADDR).await
//! # }
//! ```
//!
//! Or embed [`router`] in your own axum application (it works nested under a prefix too).
//! The router also serves the [`dashboard`] at `/`.
//! `GET /openapi.json` describes every route; `docs/http.md` in the repository has examples.

pub mod dashboard;
mod error;
mod extract;
mod handlers;
mod metrics;
pub mod openapi;
pub mod render;

pub use error::ApiError;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use durable_runtime::Client;
use std::future::Future;
use std::sync::Arc;

/// Where [`serve`] is usually pointed: loopback only, Durable Functions' local port.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7071";

/// The default limit on request bodies: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the HTTP API behaves: authentication, limits, known names, public URL.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    token: Option<String>,
    max_body_bytes: usize,
    pub(crate) orchestrators: Option<Vec<String>>,
    pub(crate) entities: Option<Vec<String>>,
    base_url: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpConfig {
    /// No authentication, 1 MiB bodies, any orchestrator or entity name accepted, URLs built
    /// from the request's `Host` header.
    pub fn new() -> Self {
        Self {
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            orchestrators: None,
            entities: None,
            base_url: None,
        }
    }

    /// Require `Authorization: Bearer <token>` on every request (else 401).
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Refuse request bodies over `n` bytes with 413 (default [`DEFAULT_MAX_BODY_BYTES`]). The
    /// client's own payload limit applies as well.
    pub fn with_max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// The orchestrator names the workers register: starting any other name is a 404 that
    /// lists these. Without it any name is accepted, and an instance of an unknown name fails
    /// with a message saying so.
    pub fn with_orchestrators<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.orchestrators = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The entity names the workers register: signaling any other name is a 404 that lists
    /// these. Without it any name is accepted (an unknown operation fails that operation only).
    pub fn with_entities<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.entities = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The public URL of the API (`https://example.com/durable`), used in `Location` headers
    /// and management URLs. Default: `http://` + the request's `Host` header + the prefix the
    /// router is nested under.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into().trim_end_matches('/').to_string());
        self
    }
}

/// Shared by the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub client: Client,
    pub config: Arc<HttpConfig>,
    pub metrics: Arc<metrics::Metrics>,
}

/// The HTTP API's routes on `client`, ready to serve or to nest in an axum application.
pub fn router(client: Client, config: HttpConfig) -> Router {
    let max_body = config.max_body_bytes;
    let state = AppState { client, config: Arc::new(config), metrics: Arc::default() };
    use handlers::*;
    Router::new()
        .route("/orchestrations/versions", get(versions).post(start_versions))
        .route("/orchestrations/{name}", post(start))
        .route("/instances", get(list).delete(purge_many))
        .route("/instances/terminate", post(terminate_many))
        .route("/instances/{id}", get(status).delete(purge_one))
        .route("/instances/{id}/raiseEvent/{event}", post(raise_event))
        .route("/instances/{id}/terminate", post(terminate))
        .route("/instances/{id}/suspend", post(suspend))
        .route("/instances/{id}/resume", post(resume))
        .route("/instances/{id}/rewind", post(rewind))
        .route("/entities", get(list_entities))
        .route("/entities/{name}/{key}", get(entity).post(signal_entity).delete(purge_entity))
        .route("/entities/{name}/{key}/history", get(entity_history))
        .route("/schedules", get(list_schedules))
        .route("/schedules/{id}", get(get_schedule).post(create_schedule).delete(delete_schedule))
        .route("/schedules/{id}/pause", post(pause_schedule))
        .route("/schedules/{id}/resume", post(resume_schedule))
        .route("/dead-letters", get(dead_letters))
        .route("/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        // After the layers: the dashboard's static assets need no token (they hold no data).
        .merge(dashboard::routes())
        .with_state(state)
}

/// Serve the API on `addr` (e.g. [`DEFAULT_ADDR`]) until the process ends.
pub async fn serve(client: Client, config: HttpConfig, addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_listener(listener, client, config, std::future::pending()).await
}

/// Serve the API on a bound listener until `shutdown` completes, then finish the requests in
/// flight. Bind port 0 and read `listener.local_addr()` to get a free port.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    client: Client,
    config: HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(client, config)).with_graceful_shutdown(shutdown).await
}
