//! openloop: POSTs a body at a fixed rate, whatever the server's speed.
//!
//! wrk is closed-loop: each connection sends its next request when the last
//! answer arrives, so a faster server is offered more load and serves it in
//! larger batches per wake-up, and the client sleeps less. Comparing two
//! servers' CPU per request that way mixes their cost with their speed.
//! Here request `i` is due at `start + i / rate`, spread over the
//! connections in turn; both servers get the same requests at the same
//! moments. A connection whose previous answer comes late sends at once
//! (counted as `late`); latency is measured from when a request was due.
//!
//! Usage: openloop URL BODY_FILE RATE SECONDS [CONNECTIONS]
//! Prints one line: `RESULT {json}`, with the fields of `wrk-post.lua`'s.
//! Loopback only (it refuses any other host).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    late: u64,
    err_status: u64,
    err_read: u64,
    err_connect: u64,
    bytes: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: openloop URL BODY_FILE RATE SECONDS [CONNECTIONS]");
        std::process::exit(2);
    }
    let url = &args[1];
    let body = std::fs::read(&args[2]).expect("reading BODY_FILE");
    let body = body.trim_ascii_end();
    let rate: f64 = args[3].parse().expect("RATE: requests per second");
    let seconds: f64 = args[4].parse().expect("SECONDS");
    let connections: usize = args.get(5).map_or(32, |c| c.parse().expect("CONNECTIONS"));

    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    assert!(
        authority.starts_with("127.0.0.1:") || authority.starts_with("localhost:"),
        "loopback only"
    );
    let request = [
        format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        body.to_vec(),
    ]
    .concat();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let total = (rate * seconds) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now() + Duration::from_millis(50);
    let tallies = runtime.block_on(async {
        let tasks: Vec<_> = (0..connections)
            .map(|c| {
                let request = request.clone();
                let authority = authority.to_owned();
                tokio::spawn(connection(
                    authority,
                    request,
                    c as u64,
                    connections as u64,
                    total,
                    started,
                    interval,
                ))
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.expect("a connection task"));
        }
        all
    });
    let elapsed = started.elapsed();
    let mut sum = Tally::default();
    for t in tallies {
        sum.latencies_us.extend(t.latencies_us);
        sum.late += t.late;
        sum.err_status += t.err_status;
        sum.err_read += t.err_read;
        sum.err_connect += t.err_connect;
        sum.bytes += t.bytes;
    }
    sum.latencies_us.sort_unstable();
    let pct = |p: f64| -> u32 {
        let l = &sum.latencies_us;
        if l.is_empty() {
            return 0;
        }
        l[((l.len() as f64 * p) as usize).min(l.len() - 1)]
    };
    let n = sum.latencies_us.len() as u64;
    println!(
        "RESULT {{\"requests\":{n},\"duration_us\":{},\"bytes\":{},\"rps\":{:.1},\"offered_rps\":{rate:.1},\
         \"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\"late\":{},\
         \"err_connect\":{},\"err_read\":{},\"err_write\":0,\"err_status\":{},\"err_timeout\":0}}",
        elapsed.as_micros(),
        sum.bytes,
        n as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        sum.latencies_us.last().copied().unwrap_or(0),
        sum.late,
        sum.err_connect,
        sum.err_read,
        sum.err_status,
    );
}

/// Sends requests `first`, `first + step`, … below `total`, each at its
/// due time (or at once when late).
async fn connection(
    authority: String,
    request: Vec<u8>,
    first: u64,
    step: u64,
    total: u64,
    started: Instant,
    interval: Duration,
) -> Tally {
    let mut tally = Tally::default();
    let mut stream = match TcpStream::connect(&authority).await {
        Ok(s) => s,
        Err(_) => {
            tally.err_connect += 1;
            return tally;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    let mut i = first;
    while i < total {
        let due = started + interval.mul_f64(i as f64);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        } else if now - due > interval.mul_f64(step as f64) {
            tally.late += 1;
        }
        if stream.write_all(&request).await.is_err() {
            tally.err_read += 1;
            return tally;
        }
        match read_answer(&mut stream, &mut buf).await {
            Some((ok, bytes)) => {
                tally.bytes += bytes as u64;
                if !ok {
                    tally.err_status += 1;
                }
            }
            None => {
                tally.err_read += 1;
                return tally;
            }
        }
        tally
            .latencies_us
            .push(due.elapsed().as_micros().min(u32::MAX as u128) as u32);
        i += step;
    }
    tally
}

/// Reads one answer (headers and a `Content-Length` body): whether it was a
/// 200, and its size.
async fn read_answer(stream: &mut TcpStream, buf: &mut [u8]) -> Option<(bool, usize)> {
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await.ok()?;
        if n == 0 {
            return None;
        }
        filled += n;
        let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
            if filled == buf.len() {
                return None;
            }
            continue;
        };
        let head = std::str::from_utf8(&buf[..end]).ok()?;
        let ok = head.starts_with("HTTP/1.1 200");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        let whole = end + 4 + length;
        while filled < whole {
            if whole > buf.len() {
                return None;
            }
            let n = stream.read(&mut buf[filled..]).await.ok()?;
            if n == 0 {
                return None;
            }
            filled += n;
        }
        return Some((ok, whole));
    }
}
