//! The operator console: a web page at `/`, its script and style under `/console/`, embedded in
//! the binary at build time, so `cargo build` is all it takes. It uses only the public REST API,
//! with the credential the user signs in with in an `Authorization` header (never in a URL), so
//! it shows no more than that credential may see.
//!
//! Every answer carries a Content-Security-Policy that allows scripts and styles from this
//! origin only, and no inline script: the pages build their DOM from data with text nodes.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// What a page of the console may load and call: this origin only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_str!(concat!("../console/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The console's files, as `/console/<path>` serves them.
const ASSETS: &[Asset] = &[
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("sse.js", JS),
    asset!("pages/alerts.js", JS),
    asset!("pages/machine.js", JS),
    asset!("pages/onboarding.js", JS),
    asset!("pages/audit.js", JS),
    asset!("pages/cost.js", JS),
    asset!("pages/status.js", JS),
    asset!("pages/rules.js", JS),
    asset!("vendor/uplot/uPlot.esm.js", JS),
    asset!("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    asset!("pages/signin.js", JS),
    asset!("pages/platform.js", JS),
    asset!("pages/tenant.js", JS),
];

const INDEX: &str = include_str!("../console/index.html");

/// The console's routes: `/` and `/console/*`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route("/console/{*path}", get(asset))
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(asset) => page(asset.content_type, asset.body),
        None => (StatusCode::NOT_FOUND, "no such file of the console").into_response(),
    }
}

/// A file of the console, with the headers that keep it to this origin.
fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Revalidated each time: the files change with the binary that embeds them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_every_script_it_names_from_the_assets() {
        for asset in ASSETS.iter().filter(|a| a.content_type == JS) {
            for line in asset.body.lines().filter(|l| l.starts_with("import ")) {
                let Some(from) = line.split('"').nth(1) else {
                    continue;
                };
                let base = asset.path.rsplit_once('/').map_or("", |(dir, _)| dir);
                let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
                for part in from.split('/') {
                    match part {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        name => parts.push(name),
                    }
                }
                let target = parts.join("/");
                assert!(
                    ASSETS.iter().any(|a| a.path == target),
                    "{} imports {from}, which is not embedded",
                    asset.path
                );
            }
        }
        assert!(INDEX.contains("/console/app.js"));
        assert!(!INDEX.contains("<script>"), "no inline script");
    }
}
