//! A minimal keep-alive HTTP/1.1 provider for the benchmarks, on 127.0.0.1: it reads each
//! request whole and accepts it at once (201 with a Twilio-like sid for `.../Messages.json`,
//! 202 with an `X-Message-Id` for anything else). Shared by `bench_delivery` (in process)
//! and `fake_provider` (a process of its own for `scripts/bench_send.sh`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves `listener` for ever; `requests` counts what it accepted.
pub async fn serve_counting(listener: TcpListener, requests: Arc<AtomicU64>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let requests = requests.clone();
        tokio::spawn(async move {
            let _ = connection(sock, &requests).await;
        });
    }
}

/// Serves `listener` for ever.
#[allow(dead_code)]
pub async fn serve(listener: TcpListener) {
    serve_counting(listener, Arc::new(AtomicU64::new(0))).await
}

async fn connection(mut sock: TcpStream, requests: &AtomicU64) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 256 * 1024];
    let mut n_req: u64 = 0;
    loop {
        // Read a header block.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let twilio = head.contains("/messages.json");
        while buf.len() < head_end + len {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..head_end + len);
        n_req += 1;
        requests.fetch_add(1, Ordering::Relaxed);
        let resp = if twilio {
            let body = format!("{{\"sid\":\"SM{n_req:032}\"}}");
            format!(
                "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        } else {
            "HTTP/1.1 202 Accepted\r\nx-message-id: bench-msg\r\ncontent-length: 0\r\n\r\n"
                .to_string()
        };
        sock.write_all(resp.as_bytes()).await?;
    }
}
