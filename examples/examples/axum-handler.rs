//! A web service that embeds the loop: an axum handler per chat request.
//!
//! Shows: the loop as shared application state (a cheap, clonable handle over the store), one
//! `POST /chat` handler that creates or continues a session by id, error codes mapped to HTTP
//! statuses (`session.not_found` → 404, `session.lease_held` → 409, …), and a graceful close.
//! Because every session lives in the store, any replica of this service can answer any session.
//!
//! Run (self-test: starts on a free port, sends two requests, stops; no network needed):
//! `cargo run -p examples --example axum-handler`
//!
//! Serve on 127.0.0.1:3000 until Ctrl-C (uses a real provider when `POWER_LOOP_BASE_URL` is set):
//! `cargo run -p examples --example axum-handler -- --serve`, then
//! `curl -s localhost:3000/chat -H 'content-type: application/json' -d '{"message":"hi"}'`

use std::sync::Arc;

use axum::Router;
use axum::extract::{Json, State};
use axum::http::StatusCode;
use axum::routing::post;
use power_loop::{ErrorCode, NewSessionOptions, ScriptedLlm, ScriptedStep, StatefulAgentLoop};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Deserialize)]
struct ChatIn {
    /// Continue this session; a new one is created when absent.
    session_id: Option<String>,
    message: String,
}

#[derive(Serialize)]
struct ChatOut {
    session_id: String,
    answer: String,
    status: String,
}

type ApiError = (StatusCode, Json<Value>);

fn api_error(e: &power_loop::Error) -> ApiError {
    let status = match e.code() {
        ErrorCode::SessionNotFound => StatusCode::NOT_FOUND,
        ErrorCode::SessionLeaseHeld | ErrorCode::SessionPending => StatusCode::CONFLICT,
        ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (
        status,
        Json(json!({"error": e.code().as_str(), "message": e.message()})),
    )
}

async fn chat(
    State(agent): State<StatefulAgentLoop>,
    Json(body): Json<ChatIn>,
) -> Result<Json<ChatOut>, ApiError> {
    let sid = match body.session_id {
        Some(id) => id,
        None => agent
            .new_session(NewSessionOptions::default())
            .await
            .map_err(|e| api_error(&e))?,
    };
    let result = agent
        .send(&sid, body.message.as_str())
        .await
        .map_err(|e| api_error(&e))?;
    Ok(Json(ChatOut {
        session_id: sid,
        answer: result.final_text,
        status: result.status.to_string(),
    }))
}

/// One HTTP/1.1 request over a plain TCP stream (keeps the example free of an HTTP client).
async fn post_json(addr: std::net::SocketAddr, body: &Value) -> std::io::Result<(u16, Value)> {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /chat HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let code = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let json = raw
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok((code, json))
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let serve = std::env::args().any(|a| a == "--serve");
    let llm: Arc<dyn power_loop::LlmService> =
        if serve && std::env::var("POWER_LOOP_BASE_URL").is_ok() {
            power_loop::LlmProviderConfig::build_from_env()?
        } else {
            Arc::new(ScriptedLlm::from_fn(|req| {
                let last = req.messages.last().map(|m| m.text()).unwrap_or_default();
                ScriptedStep::text(format!("You said: {last}"))
            }))
        };
    let dir = tempfile::tempdir()?;
    let agent = StatefulAgentLoop::builder(llm)
        .dsn(dir.path().join("web.db").display().to_string())
        .build()?;
    let app = Router::new()
        .route("/chat", post(chat))
        .with_state(agent.clone());

    let addr = if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });

    if serve {
        println!("listening on http://{local}/chat (Ctrl-C stops)");
        let _ = tokio::signal::ctrl_c().await;
    } else {
        let (code, first) = post_json(local, &json!({"message": "hello"})).await?;
        println!("{code} {first}");
        let sid = first["session_id"].as_str().unwrap_or_default().to_owned();
        let (code, second) =
            post_json(local, &json!({"session_id": sid, "message": "again"})).await?;
        println!("{code} {second}");
        let (code, missing) = post_json(
            local,
            &json!({"session_id": "no-such-session", "message": "x"}),
        )
        .await?;
        println!("{code} {missing}");
        assert_eq!(second["answer"], "You said: again");
        assert_eq!(code, 404);
    }
    let _ = stop.send(());
    let _ = server.await;
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
