//! Connections as hostile or clumsy clients open them: stalled and huge
//! header blocks, half-closed sockets, bodies nobody asked for, shutdown
//! with half-sent requests. Raw sockets, so the test controls every byte.

mod common;

use std::time::Duration;

use common::{read, workload, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Hang guard for one raw exchange; not a speed assertion.
const GUARD: Duration = Duration::from_secs(20);

/// The webhook request of the reference workload, as raw HTTP/1.1.
fn hook_request(extra_headers: &str) -> Vec<u8> {
    let body = read(workload("request.json"));
    let mut req = format!(
        "POST /hooks/boleto?token=demo-token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req
}

/// Reads one response: (status, lower-cased head, body). `None` if the
/// connection closed or failed before a whole response came.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some((status, head, buf[head_end..head_end + length].to_vec()))
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Opens `n` connections that each send the start of a request and `pad`
/// bytes of headers, never the blank line that ends them.
async fn stalled_header_blocks(server: &TestServer, n: usize, pad: usize) -> Vec<TcpStream> {
    let line = format!("X-Pad: {}\r\n", "a".repeat(1000));
    let block: Vec<u8> = std::iter::once(b"GET /healthz HTTP/1.1\r\nHost: t\r\n".to_vec())
        .chain(std::iter::repeat_n(line.into_bytes(), pad / 1010))
        .flatten()
        .collect();
    let block = std::sync::Arc::new(block);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let addr = server.addr;
        let block = block.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            // The server may answer 431 and close before all of it is sent.
            let _ = tokio::time::timeout(GUARD, s.write_all(&block)).await;
            s
        }));
    }
    let mut streams = Vec::new();
    for t in tasks {
        streams.push(t.await.unwrap());
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_header_blocks_keep_memory_bounded_and_good_requests_served() {
    let server = TestServer::start(&common::fixtures()).await;
    let before = rss_kib();
    // 300 × 400 KiB: buffered whole, that is over 117 MiB.
    let streams = stalled_header_blocks(&server, 300, 400 * 1024).await;
    // Let the server read what it will.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 40,
        "RSS grew by {grown_mib} MiB with 300 stalled header blocks"
    );
    let resp = tokio::time::timeout(GUARD, server.client.get(server.url("/healthz")).send())
        .await
        .expect("a good request is served while header blocks stall")
        .unwrap();
    assert_eq!(resp.status(), 200);
    drop(streams);
    server.stop().await;
}

#[tokio::test]
async fn a_header_block_over_the_cap_gets_431() {
    let server = TestServer::start(&common::fixtures()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let pad = format!("X-Pad: {}\r\n", "a".repeat(64 * 1024));
    let req = format!("GET /healthz HTTP/1.1\r\nHost: t\r\n{pad}\r\n");
    let _ = s.write_all(req.as_bytes()).await;
    let (status, _, _) = tokio::time::timeout(GUARD, read_response(&mut s))
        .await
        .unwrap()
        .expect("an answer, not a dropped connection");
    assert_eq!(status, 431);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_closed_clients_get_their_answer() {
    let server = TestServer::start(&common::fixtures()).await;
    for round in 0..20 {
        for (what, req) in [
            ("webhook", hook_request("")),
            (
                "healthz",
                b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            ),
        ] {
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            s.write_all(&req).await.unwrap();
            s.shutdown().await.unwrap();
            let got = tokio::time::timeout(GUARD, read_response(&mut s))
                .await
                .unwrap();
            let (status, _, _) = got.unwrap_or_else(|| {
                panic!("{what}, round {round}: no answer after shutdown(Write)")
            });
            assert_eq!(status, 200, "{what}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn idle_and_half_sent_connections_do_not_delay_shutdown() {
    let server = TestServer::start(&common::fixtures()).await;
    let mut crlf = TcpStream::connect(server.addr).await.unwrap();
    crlf.write_all(b"\r\n").await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let _idle = TcpStream::connect(server.addr).await.unwrap();
    // Let the server read those bytes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The test server's grace is 5 s; a connection that sent no whole
    // request must not hold shutdown for it.
    tokio::time::timeout(Duration::from_secs(3), server.stop())
        .await
        .expect("shutdown waited for connections with no request in flight");
}

#[tokio::test]
async fn a_body_on_another_route_keeps_the_connection_usable() {
    let server = TestServer::start(&common::fixtures()).await;
    for (method, path) in [
        ("POST", "/healthz"),
        ("GET", "/healthz"),
        ("POST", "/nowhere"),
    ] {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let body = "x".repeat(20_000);
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        // The body comes a little later, as it does over a real network.
        tokio::time::sleep(Duration::from_millis(100)).await;
        s.write_all(body.as_bytes()).await.unwrap();
        let (_, head, _) = tokio::time::timeout(GUARD, read_response(&mut s))
            .await
            .unwrap()
            .expect("an answer");
        if head.contains("connection: close") {
            continue;
        }
        // Without `Connection: close`, the connection must serve another request.
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let next = tokio::time::timeout(GUARD, read_response(&mut s))
            .await
            .unwrap();
        assert_eq!(
            next.map(|r| r.0),
            Some(200),
            "{method} {path}: kept alive without `Connection: close` but not usable"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_writes_a_huge_body_before_reading_gets_the_413() {
    let server = TestServer::start(&common::fixtures()).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let body = vec![b' '; 8 * 1024 * 1024];
    let head = format!(
        "POST /hooks/boleto?token=demo-token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // As Python's urllib does: the whole request, then read.
    let written = tokio::time::timeout(GUARD, async {
        s.write_all(head.as_bytes()).await?;
        s.write_all(&body).await
    })
    .await
    .unwrap();
    // A broken pipe here is what urllib reports instead of the answer.
    assert!(written.is_ok(), "writing the body: {written:?}");
    let got = tokio::time::timeout(GUARD, read_response(&mut s))
        .await
        .unwrap();
    let (status, head, body) = got.expect("the 413 answer");
    assert_eq!(status, 413, "{head}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(json.get("error").is_some(), "{json}");
    server.stop().await;
}

/// A body refused unread (too long by its `Content-Length`, or not JSON) is
/// refused at once, with no `100 Continue` first, and the answer says
/// `Connection: close`: the connection cannot carry another request, and a
/// client must not send one into it.
#[tokio::test]
async fn a_body_refused_unread_is_refused_at_once_and_closes_the_connection() {
    let server = TestServer::start(&common::fixtures()).await;
    for (content_type, length, expect, status) in [
        ("application/json", 10_000_000, "", 413),
        (
            "application/json",
            10_000_000,
            "Expect: 100-continue\r\n",
            413,
        ),
        ("text/plain", 100, "", 415),
        ("text/plain", 100, "Expect: 100-continue\r\n", 415),
        ("application/json; charset=iso-8859-1", 100, "", 415),
    ] {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let head = format!(
            "POST /hooks/boleto?token=demo-token HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n{expect}\r\n"
        );
        // The head only: the old code waited for the body (then 408).
        s.write_all(head.as_bytes()).await.unwrap();
        let (got, head, body) = tokio::time::timeout(GUARD, read_response(&mut s))
            .await
            .unwrap()
            .expect("an answer");
        assert_eq!(got, status, "{content_type} {expect}: {head}");
        assert!(head.contains("connection: close"), "{head}");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json["error"]["code"].is_string(), "{json}");
    }
    // Over the limit while read (chunked: no length announced).
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    s.write_all(b"POST /hooks/boleto?token=demo-token HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..5 {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        s.write_all(&chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    let (got, head, _) = tokio::time::timeout(GUARD, read_response(&mut s))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(got, 413, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    server.stop().await;
}

/// Inotify watches this process holds, from `/proc/self/fdinfo`.
fn inotify_watches() -> usize {
    let mut n = 0;
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_inotify = std::fs::read_link(fd.path())
            .map(|t| t.to_string_lossy().contains("inotify"))
            .unwrap_or(false);
        if is_inotify {
            let info = std::fs::read_to_string(
                std::path::Path::new("/proc/self/fdinfo").join(fd.file_name()),
            )
            .unwrap_or_default();
            n += info.lines().filter(|l| l.starts_with("inotify")).count();
        }
    }
    n
}

#[tokio::test]
async fn a_symlinked_tree_in_a_tenant_folder_adds_no_watches() {
    let root = common::integrations_with(&[]);
    let outside = tempfile::tempdir().unwrap();
    let mut deep = outside.path().to_owned();
    for i in 0..200 {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    for i in 0..50 {
        std::fs::create_dir_all(outside.path().join(format!("wide{i}"))).unwrap();
    }
    std::os::unix::fs::symlink(outside.path(), root.path().join("demo/linked")).unwrap();
    let before = inotify_watches();
    let server = TestServer::start_watching(root.path(), "admin-token-1").await;
    let added = inotify_watches() - before;
    assert!(added < 20, "{added} inotify watches for 2 folders");

    // A new file in the tenant's own folder still reloads (a new file:
    // an edit of boleto.yaml would have to keep its `tests:` passing).
    let generation = server.state.config.load().generation;
    std::fs::write(
        root.path().join("demo/novo.yaml"),
        "messages:\n  - text: recarregado\n",
    )
    .unwrap();
    tokio::time::timeout(GUARD, async {
        while server.state.config.load().generation == generation {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the edit reloads");
    let (status, body) = server
        .post(
            "/hooks/novo?token=demo-token",
            read(workload("request.json")),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["value"], "recarregado", "{body}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_want_credentials() {
    let server = TestServer::start(&common::fixtures()).await;
    let resp = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(resp.status().as_u16(), 401 | 404),
        "/metrics without credentials: {}",
        resp.status()
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_take_the_metrics_or_admin_token_and_render_once_a_second() {
    let metrics_token = recado::state::AdminToken::new("metrics-token-1");
    let admin_token = recado::state::AdminToken::new("admin-token-1");
    let server = TestServer::start_with(&common::fixtures(), |s| {
        s.metrics_token = Some(metrics_token);
        s.admin_token = Some(admin_token);
    })
    .await;
    let scrape = |token: Option<&'static str>| {
        let mut req = server.client.get(server.url("/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap())
        }
    };
    assert_eq!(scrape(None).await.0, 401);
    assert_eq!(scrape(Some("wrong-token")).await.0, 401);
    let (status, first) = scrape(Some("metrics-token-1")).await;
    assert_eq!(status, 200);
    let (status, second) = scrape(Some("admin-token-1")).await;
    assert_eq!(status, 200);
    // Within the cache window: the same page, rendered once.
    assert_eq!(first, second);
    assert_eq!(server.state.scrapes.renders(), 1);
    server.stop().await;
}

#[tokio::test]
async fn metrics_listener_serves_only_metrics() {
    let state = TestServer::start(&common::fixtures()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(recado::server::serve_metrics(
        listener,
        state.state.clone(),
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    let get = |path: &str| state.client.get(format!("http://{addr}{path}")).send();
    let resp = get("/metrics").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("recado_"));
    assert_eq!(get("/healthz").await.unwrap().status(), 404);
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    state.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_header_block_is_closed_after_the_header_timeout() {
    let server = TestServer::start_with(&common::fixtures(), |s| {
        s.header_timeout = Duration::from_millis(200);
        s.idle_timeout = Duration::from_secs(60);
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let trickle = async {
        for b in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "
            .iter()
            .chain(&[b'a'; 1000])
        {
            if s.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    // The idle timeout is a minute: only the header timeout closes it.
    tokio::time::timeout(GUARD, trickle)
        .await
        .expect("a trickled header block was never closed");

    // An idle keep-alive connection is not a header block under way.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut idle).await.unwrap().0, 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut idle).await.map(|r| r.0), Some(200));
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_the_slot_comes_back() {
    let server = TestServer::start_with(&common::fixtures(), |s| s.max_connections = 2).await;
    let mut a = TcpStream::connect(server.addr).await.unwrap();
    let _b = TcpStream::connect(server.addr).await.unwrap();
    // Accepted by the kernel, closed by recado at once.
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(GUARD, c.read(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // A slot frees when a connection closes.
    a.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut a).await.unwrap().0, 200);
    drop(a);
    served_again(&server).await;
    server.stop().await;
}

/// `--max-connections-per-ip`: one address cannot hold more than its share;
/// another address is still served, and a place frees when a connection
/// closes.
#[tokio::test]
async fn connections_over_the_per_address_cap_are_refused() {
    let server =
        TestServer::start_with(&common::fixtures(), |s| s.max_connections_per_ip = 2).await;
    let mut a = TcpStream::connect(server.addr).await.unwrap();
    let mut b = TcpStream::connect(server.addr).await.unwrap();
    for s in [&mut a, &mut b] {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(s).await.unwrap().0, 200);
    }
    // A third from the same address: accepted by the kernel, closed at once.
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(GUARD, c.read(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // Another address (all of 127/8 is loopback) is served.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = socket.connect(server.addr).await.unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut other).await.unwrap().0, 200);
    // The first address gets a place back when one of its connections closes.
    drop(a);
    served_again(&server).await;
    drop(b);
    server.stop().await;
}

/// Waits until a new connection is served again (a place freed by a
/// close is back once the server has seen the close).
async fn served_again(server: &TestServer) {
    tokio::time::timeout(GUARD, async {
        loop {
            let mut d = TcpStream::connect(server.addr).await.unwrap();
            let _ = d
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .await;
            if read_response(&mut d).await.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a freed place serves a new connection");
}

/// The figures of issue #13, by hand (not a pass/fail test: speed belongs
/// in benches): `ulimit -n 8192; cargo test --release --test connections
/// -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_1500_stalled_header_blocks() {
    // Over the header cap (answered 431), and just under it (held until
    // the header timeout).
    for pad in [400 * 1024, 7 * 1024] {
        let server = TestServer::start(&common::fixtures()).await;
        let before = rss_kib();
        let streams = stalled_header_blocks(&server, 1500, pad).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let after = rss_kib();
        let started = std::time::Instant::now();
        let resp = server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        eprintln!(
            "1500 stalled header blocks of {} KiB: RSS {} MiB -> {} MiB; a good request meanwhile: {} in {took:?}",
            pad / 1024,
            before / 1024,
            after / 1024,
            resp.status()
        );
        drop(streams);
        server.stop().await;
    }
}

/// A body that stops short of its `Content-Length` gets the 408 once the
/// body timeout (10 s) has passed, not a worker held forever; and a body
/// that arrives in pieces within it is answered as usual.
#[tokio::test]
async fn a_stalled_body_gets_408_and_a_slow_one_is_answered() {
    let server = TestServer::start(&common::fixtures()).await;
    let request = hook_request("");
    let cut = request.len() - 40;

    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(&request[..cut]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    slow.write_all(&request[cut..]).await.unwrap();
    let (status, _, _) = tokio::time::timeout(GUARD, read_response(&mut slow))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(status, 200);

    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled.write_all(&request[..cut]).await.unwrap();
    let (status, _, body) = tokio::time::timeout(GUARD, read_response(&mut stalled))
        .await
        .unwrap()
        .expect("an answer");
    assert_eq!(status, 408);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "body_timeout", "{body}");
    server.stop().await;
}
