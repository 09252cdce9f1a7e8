//! A small real HTTP server on loopback for the webhook provider's tests, shaped like the
//! httpbin endpoints ESO's documentation uses (`/get` echoes its query arguments and headers),
//! plus what the tests need beyond it: `/post` (echoes the JSON body), `/object` (a JSON object
//! for `dataFrom.extract`), `/status/<code>`, `/big` (2 MiB), `/slow` (answers after 3 s),
//! `/push` (records each request, as [`WebhookServer::pushes`] returns them).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use serde_json::{Value, json};

/// A running server; dropped with the test's runtime.
pub struct WebhookServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    recorded: Arc<Mutex<Vec<Value>>>,
}

impl WebhookServer {
    /// The requests `/push` received, in order: `{"method", "args", "headers", "body"}`.
    pub fn pushes(&self) -> Vec<Value> {
        self.recorded.lock().unwrap().clone()
    }
}

fn json_response(v: Value) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string())
}

fn headers_json(h: &HeaderMap) -> Value {
    // httpbin's shape: canonical header names, one string each.
    let mut out = serde_json::Map::new();
    for (name, value) in h {
        let canon = name
            .as_str()
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-");
        out.insert(canon, json!(value.to_str().unwrap_or_default()));
    }
    Value::Object(out)
}

/// Starts the server on an ephemeral loopback port.
pub async fn start() -> WebhookServer {
    let recorded: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = Arc::clone(&recorded);
    let app = Router::new()
        .route(
            "/push",
            any(
                move |m: Method,
                      Query(args): Query<BTreeMap<String, String>>,
                      h: HeaderMap,
                      body: Bytes| async move {
                    record
                        .lock()
                        .unwrap()
                        .push(json!({"method": m.as_str(), "args": args,
                        "headers": headers_json(&h), "body": String::from_utf8_lossy(&body)}));
                    json_response(json!({"ok": true}))
                },
            ),
        )
        .route(
            "/get",
            get(
                |Query(args): Query<BTreeMap<String, String>>, h: HeaderMap| async move {
                    json_response(json!({"args": args, "headers": headers_json(&h)}))
                },
            ),
        )
        .route(
            "/post",
            any(|h: HeaderMap, body: Bytes| async move {
                let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                json_response(json!({"json": parsed, "headers": headers_json(&h)}))
            }),
        )
        .route(
            "/object",
            get(|| async {
                json_response(json!({"user": "admin", "port": 5432, "ratio": 1.5,
                    "nested": {"b": 1, "a": "<x>"}, "list": [1, "two"], "flag": true}))
            }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
            }),
        )
        .route("/big", get(|| async { "x".repeat(2 * 1024 * 1024) }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                json_response(json!({"v": "late"}))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    WebhookServer {
        base: format!("http://{addr}"),
        recorded,
    }
}
