//! What the router exposes, read from its own source (`routes/mod.rs`, `web/mod.rs`), so that a
//! route added without a decision fails here: every API route is documented, every route a
//! stranger may call is on an explicit public list, and every other one refuses a request that
//! carries no credential (401 for the API; the sign-in page or 401 for the dashboard's and the
//! driver's pages).

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use crate::helpers::spawn_app;

const ROUTER: &str = include_str!("../../src/routes/mod.rs");
const PAGES: &str = include_str!("../../src/web/mod.rs");

/// API routes anyone may call, and why each is safe to.
const PUBLIC_API: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
    // Counts and names of functions, cameras and lots; never a plate or a key (tested in metrics).
    ("get", "/metrics"),
    // Guidance for signs and apps: free and occupied counts.
    ("get", "/v1/lots/{id}/availability"),
    ("get", "/v1/lots/{id}/events"),
    // Signing up and in is how a driver gets a credential; sign-in is throttled.
    ("post", "/v1/drivers"),
    ("post", "/v1/drivers/sign-in"),
    ("post", "/v1/card-setups"),
    // A pay link is a secret in its own right (128 random bits).
    ("get", "/v1/pay/{link}"),
    ("post", "/v1/pay/{link}"),
    // Stripe's signature is the credential.
    ("post", "/v1/webhooks/stripe"),
];

/// Routed only where the functions run apart, for the broker inside the cluster (cluster-local
/// Services): not part of the public API.
const BROKER_ONLY: &[(&str, &str)] = &[("post", "/"), ("post", "/v1/dead-letters")];

/// Pages anyone may open: the portal's own, sign-in forms, pay-by-plate, assets.
const PUBLIC_PAGES: &[&str] = &[
    "/",
    "/signup",
    "/signin",
    "/pay",
    "/pay/{link}",
    "/ops/login",
    "/ops/logout",
    "/assets/valet.css",
    "/assets/card.js",
    "/assets/live-map.js",
    "/favicon.ico",
];

/// Every `.route("PATH", get(…).post(…))` in `source`: (method, path).
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for chunk in source.split(".route(\"").skip(1) {
        let (path, rest) = chunk.split_once('"').unwrap();
        // The handlers run to the end of this call: up to the next route or the statement's end.
        let call = rest.split([';']).next().unwrap();
        for method in ["get", "post", "put", "delete", "patch"] {
            if call.contains(&format!("({method}("))
                || call.contains(&format!(".{method}("))
                || call.contains(&format!(" {method}("))
            {
                routes.push((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "00000000000000000000000000000000" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_route_reader_reads_methods_and_paths() {
    let routes = routes_in(r#"app.route("/a", get(x::a).post(x::b)).route("/b/{id}", delete(y));"#);
    assert_eq!(
        routes,
        [("get".into(), "/a".into()), ("post".into(), "/a".into()), ("delete".into(), "/b/{id}".into())]
    );
}

#[tokio::test]
async fn every_api_route_is_documented_and_needs_its_credential_unless_listed_public() {
    let app = spawn_app().await;
    let document = valet_server::openapi_document();
    let routes = routes_in(ROUTER);
    assert!(routes.len() >= 40, "only {} routes read: {routes:?}", routes.len());
    let mut refused = 0;
    for (method, path) in &routes {
        let pair = (method.as_str(), path.as_str());
        if BROKER_ONLY.contains(&pair) {
            continue;
        }
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is routed but not in /openapi.json");
        let public = PUBLIC_API.contains(&pair);
        assert_eq!(
            operation["security"].is_null(),
            public,
            "{method} {path}: documented caller and public list disagree"
        );
        if public {
            continue;
        }
        let request =
            Request::builder().method(method.to_uppercase().as_str()).uri(concrete(path)).body(Body::empty()).unwrap();
        let status = app.router.clone().oneshot(request).await.unwrap().status();
        assert_eq!(status, 401, "{method} {path} without a credential");
        refused += 1;
    }
    assert!(refused >= 25, "only {refused} routes need a credential");
    for (method, path) in PUBLIC_API {
        assert!(
            routes.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is listed public but not routed"
        );
    }
}

#[tokio::test]
async fn every_dashboard_and_account_page_needs_its_sign_in_unless_listed_public() {
    let app = spawn_app().await;
    let pages = routes_in(PAGES);
    assert!(pages.len() >= 25, "only {} pages read", pages.len());
    let mut guarded = 0;
    for (method, path) in &pages {
        if PUBLIC_PAGES.contains(&path.as_str()) {
            continue;
        }
        assert!(
            path.starts_with("/ops") || path.starts_with("/me"),
            "{method} {path}: neither public nor under /ops or /me"
        );
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(concrete(path))
            .header("content-type", "application/x-www-form-urlencoded")
            // Every field any of the forms takes, so each reaches its handler's sign-in check.
            .body(Body::from(
                "csrf=x&why=x&plate=AB123CD&resolution=x&decision=none&key=x&name=x&url=x&direction=entry&lane=x\
                 &list=allow&camera=x&every_ms=100&region=eu&version=1",
            ))
            .unwrap();
        let response = app.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let to = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
        // A driver without a sign-in is sent to the portal's front page, which signs up and in.
        let sign_in = if path.starts_with("/ops") { "/ops/login" } else { "/" };
        let sent_to_sign_in = (300..400).contains(&status) && to == sign_in;
        assert!(sent_to_sign_in || status == 401 || status == 403, "{method} {path} without a sign-in: {status} {to}");
        guarded += 1;
    }
    assert!(guarded >= 15, "only {guarded} pages are guarded");
}
