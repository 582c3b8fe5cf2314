//! `cargo xtask up --proxies N --replicas M`: several proxies behind haproxy
//! on the address `up` serves, each reading from the replicas; runs until
//! one of them exits (Ctrl-C reaches them all).

use anyhow::Context;

use crate::haproxy::Haproxy;
use crate::proxy::ProxyUnderTest;
use crate::run;

pub struct Shape<'a> {
    /// Where clients connect: haproxy with several proxies, else the proxy.
    pub addr: &'a str,
    pub proxies: u16,
    pub url: &'a str,
    pub replica_urls: &'a [String],
    pub profile: run::Profile,
}

pub fn serve(shape: &Shape) -> anyhow::Result<()> {
    let env: Vec<(String, String)> = if shape.replica_urls.is_empty() {
        Vec::new()
    } else {
        vec![("VERITABLE_REPLICA_URLS".to_owned(), shape.replica_urls.join(","))]
    };
    let binary = shape.profile.proxy_binary();
    if shape.proxies == 1 {
        let mut proxy = ProxyUnderTest::start_on(shape.addr, &binary, shape.url, false, &env)?;
        return proxy.wait();
    }
    let (host, port) = shape.addr.rsplit_once(':').context("VERITABLE_ADDR is HOST:PORT")?;
    let port: u16 = port.parse().context("VERITABLE_ADDR's port")?;
    let mut proxies = Vec::new();
    for n in 1..=shape.proxies {
        let at = format!("{host}:{}", port + n);
        proxies.push(ProxyUnderTest::start_on(&at, &binary, shape.url, false, &env)?);
    }
    let backends: Vec<&str> = proxies.iter().map(|p| p.addr.as_str()).collect();
    let _balancer = Haproxy::start_on(host, port, &backends)?;
    eprintln!("    haproxy on {} balances {}", shape.addr, backends.join(", "));
    proxies[0].wait()
}
