//! Signing the virtual users in: one session per seeded user, through the
//! real login (argon2 and all). Tokens are kept in a file between runs and
//! checked with `GET /api/v1/me` before use, because 5,000 logins cost the
//! proxy minutes of hashing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::http::Http;

/// Logins in flight: the proxy hashes on a few threads, so more only queue.
const LOGINS_IN_FLIGHT: usize = 16;
const CHECKS_IN_FLIGHT: usize = 64;
/// Attempts per login when the proxy answers 429 or 503 (with Retry-After).
const ATTEMPTS: u32 = 20;

/// Tokens, in the order of the usernames given.
pub async fn sign_in(
    http: &Http,
    usernames: &[String],
    password: &str,
    cache: Option<&Path>,
) -> anyhow::Result<Vec<String>> {
    let cached: HashMap<String, String> = cache
        .and_then(|path| std::fs::read(path).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let bar = ProgressBar::new(usernames.len() as u64).with_style(
        ProgressStyle::with_template("  signing in {pos}/{len} users {wide_bar} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let password: Arc<str> = Arc::from(password);
    // Logins beyond these wait here, not in the proxy's hashing queue.
    let slots = Arc::new(Semaphore::new(LOGINS_IN_FLIGHT));
    let tokens: Vec<anyhow::Result<String>> = futures_util::stream::iter(usernames.iter().cloned())
        .map(|username| {
            let (http, bar, password, slots) = (http.clone(), bar.clone(), password.clone(), slots.clone());
            let known = cached.get(&username).cloned();
            async move {
                let token = match known {
                    Some(token) if still_valid(&http, &token).await => token,
                    _ => login(&http, &slots, &username, &password).await?,
                };
                bar.inc(1);
                Ok(token)
            }
        })
        .buffered(CHECKS_IN_FLIGHT)
        .collect()
        .await;
    bar.finish_and_clear();
    let tokens = tokens.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(path) = cache {
        let map: HashMap<&String, &String> = usernames.iter().zip(&tokens).collect();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec(&map)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(tokens)
}

/// Whether the proxy still knows `token`; a busy proxy (503) is asked again.
async fn still_valid(http: &Http, token: &str) -> bool {
    for _ in 0..ATTEMPTS {
        match http.client().get(http.url("/api/v1/me")).bearer_auth(token).send().await {
            Ok(r) if r.status().as_u16() == 503 => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(r) => return r.status().is_success(),
            Err(_) => return false,
        }
    }
    false
}

async fn login(http: &Http, slots: &Semaphore, username: &str, password: &str) -> anyhow::Result<String> {
    let _slot = slots.acquire().await?;
    let body = json!({ "username": username, "password": password });
    for _ in 0..ATTEMPTS {
        let response = http.client().post(http.url("/api/v1/auth/login")).json(&body).send().await?;
        let status = response.status().as_u16();
        if status == 429 || status == 503 {
            // The server says when to come back; a few seconds at most.
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1)
                .min(10);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let answer: serde_json::Value = response.json().await?;
        anyhow::ensure!(status == 200, "login as {username} answered {status}: {answer}");
        return answer["token"].as_str().map(str::to_owned).context("the login answer has no token");
    }
    anyhow::bail!("login as {username} was refused {ATTEMPTS} times (429/503); are the proxy's login limits lifted?")
}
