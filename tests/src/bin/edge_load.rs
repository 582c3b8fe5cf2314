//! Slowloris and idle floods for `bench/edge.sh`: one client's latency
//! against one proxy on 127.0.0.1, first alone, then while HELD other
//! connections sit open (half idle, half trickling an unfinished request
//! head), bounded in count and time.
//!
//!   edge-load ADDR HELD SECS
//!
//! Prints p50/p99 of sequential `GET /api/v1/forums/categories` for SECS
//! seconds idle and SECS seconds loaded (keep SECS under the proxy's header
//! timeout), their ratio, and how long opening the held connections took.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn quantiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.5), at(0.99))
}

async fn latencies(http: &reqwest::Client, url: &str, secs: f64) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::new();
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        let started = Instant::now();
        let response = http.get(url).send().await?;
        anyhow::ensure!(response.status() == 200, "status {}", response.status());
        response.bytes().await?;
        out.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(held), Some(secs)) = (args.first(), args.get(1), args.get(2)) else {
        anyhow::bail!("usage: edge-load ADDR HELD SECS");
    };
    let (held, secs): (usize, f64) = (held.parse()?, secs.parse()?);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let url = format!("http://{addr}/api/v1/forums/categories");
    let http = reqwest::Client::new();
    latencies(&http, &url, 0.5).await?; // warm the cache and the connection
    let idle = latencies(&http, &url, secs).await?;
    let idle_count = idle.len();
    let (idle_p50, idle_p99) = quantiles(idle);

    let opening = Instant::now();
    let mut sockets = Vec::with_capacity(held);
    for i in 0..held {
        let mut tcp = TcpStream::connect(addr.as_str()).await?;
        if i % 2 == 0 {
            tcp.write_all(b"GET /api/v1/forums/categories HTTP/1.1\r\nHost: x\r\n").await?;
        }
        sockets.push(tcp);
    }
    let opened = opening.elapsed().as_secs_f64();
    // Trickle one header line to the slow half while the client measures.
    let trickle = async {
        let mut round = 0u32;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for tcp in sockets.iter_mut().step_by(2) {
                let _ = tcp.write_all(format!("X-{round}: y\r\n").as_bytes()).await;
            }
            round += 1;
        }
    };
    let measured = tokio::select! {
        measured = latencies(&http, &url, secs) => measured?,
        () = trickle => unreachable!("the trickle never ends"),
    };
    let loaded_count = measured.len();
    let (loaded_p50, loaded_p99) = quantiles(measured);
    println!(
        "held {held} (opened in {opened:.1} s): idle p50 {idle_p50:.3} ms p99 {idle_p99:.3} ms ({idle_count} requests); \
         loaded p50 {loaded_p50:.3} ms p99 {loaded_p99:.3} ms ({loaded_count} requests); p99 ratio {:.2}",
        loaded_p99 / idle_p99
    );
    Ok(())
}
