//! baseline-hyper: the "physical limit" peer.
//!
//! Answers every POST with the fixed, pre-rendered expected body
//! (`tests/data/workload/expected.json`, built in). The request
//! body is read to the end (so keep-alive works exactly as for the other
//! peers) but never parsed. Anything that is not a POST gets 405.
//!
//! Usage: baseline-hyper PORT   (binds 127.0.0.1:PORT)

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The fixed answer: the repository's reference workload answer
/// (`tests/data/workload/expected.json`), read at compile time, without its
/// trailing newline. It is the array recado answers for `request.json`.
const BODY: &[u8] = include_bytes!("../../../tests/data/workload/expected.json").trim_ascii_end();

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::POST {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        return Ok(r);
    }
    // Drain the request body (no parsing).
    let _ = req.into_body().collect().await;
    let mut r = Response::new(Full::new(Bytes::from_static(BODY)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: baseline-hyper PORT")?
        .parse()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr).await?;
    eprintln!("baseline-hyper listening on http://{addr}");
    // SIGTERM ends it normally, so that an instrumented build
    // (`benches/pgo.py`) writes its profile at exit.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = term.recv() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
