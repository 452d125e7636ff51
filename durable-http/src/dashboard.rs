//! The dashboard: a page, a script and a stylesheet embedded in the binary (no build step),
//! served at `/`, `/dashboard.js` and `/dashboard.css`. It uses the JSON API only, through
//! relative URLs, so it works wherever the router is mounted. The assets hold no data, so they
//! need no token; the page asks for the token when the API answers 401.

use crate::AppState;
use axum::Router;
use axum::extract::OriginalUri;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The page.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The script.
pub const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
/// The stylesheet.
pub const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");

/// The dashboard's routes (outside the token check).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard.js", get(|| async { asset("text/javascript; charset=utf-8", DASHBOARD_JS) }))
        .route("/dashboard.css", get(|| async { asset("text/css; charset=utf-8", DASHBOARD_CSS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page. Its `<base>` makes relative URLs resolve under the path the router is
/// mounted at, with or without a trailing slash: nested at `/durable`, the page is at
/// `/durable` and `dashboard.js` must resolve to `/durable/dashboard.js`, so the base is
/// `durable/` (relative itself, so it also works behind a proxy that adds a prefix).
async fn index(uri: Option<axum::Extension<OriginalUri>>) -> Response {
    let original = uri.map(|u| u.0.0.path().to_string()).unwrap_or_else(|| "/".to_string());
    let base = match original.rsplit('/').next() {
        Some(last) if !last.is_empty() => format!("{}/", html_attr(last)),
        _ => "./".to_string(),
    };
    let page = INDEX_HTML.replacen(r#"<base href="./">"#, &format!(r#"<base href="{base}">"#), 1);
    let mut resp = asset("text/html; charset=utf-8", "");
    *resp.body_mut() = axum::body::Body::from(page);
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'",
        ),
    );
    resp
}

fn html_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}
