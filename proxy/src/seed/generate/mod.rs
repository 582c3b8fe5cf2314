//! The rows themselves. Everything derives from one RNG seed; each table draws
//! from its own stream so changing one table does not reshuffle the others.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio_postgres::types::{ToSql, Type};
use veritable_core::sanitize::POLICY_VERSION;

use super::shape::Shape;
use super::text;
use super::{Loader, Row};

mod categories;
mod notifications;
mod replies;
mod topics;
mod users;
mod wiki;

use categories::*;
use notifications::*;
use replies::*;
use topics::*;
pub use users::username_of;
use users::*;
use wiki::*;

/// Data spans the two years before this instant (2026-11-01T00:00:00Z), so
/// the same seed gives the same rows whenever it runs.
pub(super) const END_SECS: u64 = 1_793_491_200;
pub(super) const SPAN_SECS: u64 = 730 * 24 * 3600;

pub(super) fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub(super) fn stream(seed: u64, table: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(table);
    rng
}

/// One argon2id hash shared by all demo accounts: hashing 10,000 passwords
/// separately would take minutes and prove nothing.
pub fn password_hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(b"veritable-demo-salt").map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the demo password: {e}"))?;
    Ok(hash.to_string())
}

/// A skewed pick in `1..=n`: low ids are chosen far more often (active users,
/// busy categories).
pub(super) fn skewed(rng: &mut ChaCha8Rng, n: u32) -> i64 {
    let u: f64 = rng.random();
    1 + ((u * u * f64::from(n)) as i64).min(i64::from(n) - 1)
}

pub async fn load_all(load: &mut Loader<'_>, shape: &Shape, seed: u64, password_hash: &str) -> anyhow::Result<()> {
    load_users(load, shape, seed, password_hash).await?;
    load_categories_and_tags(load, shape, seed).await?;
    let topics = plan_topics(shape, seed);
    load_topics(load, shape, seed, &topics).await?;
    let replies = plan_replies(shape, seed, &topics);
    let extras = load_replies(load, shape, seed, &topics, &replies).await?;
    drop(replies);
    load_notifications(load, extras).await?;
    load_wiki(load, shape, seed).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_counts_sum_exactly_and_respect_the_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let counts = ordinary_reply_counts(&mut rng, 1_000, 50_000, 800);
        assert_eq!(counts.iter().map(|&c| u64::from(c)).sum::<u64>(), 50_000);
        assert!(counts.iter().all(|&c| c <= 800));
        assert!(counts.contains(&0), "some topics get no replies");
        assert!(counts.iter().filter(|&&c| c >= 200).count() < 100, "the distribution is skewed");
    }

    #[test]
    fn parents_precede_children_and_stay_in_their_topic() {
        let shape = Shape::of(crate::config::Scale::Small);
        let topics = plan_topics(&shape, 9);
        let replies = plan_replies(&shape, 9, &topics);
        assert_eq!(replies.plans.len() as u64, shape.replies);
        for (i, plan) in replies.plans.iter().enumerate() {
            if let Some(k) = plan.parent {
                let parent_id = replies.ids[replies.first[plan.topic as usize] + k as usize];
                assert!(parent_id < i as i64 + 1, "parent {parent_id} precedes reply {}", i + 1);
                let parent = &replies.plans[parent_id as usize - 1];
                assert_eq!(parent.topic, plan.topic);
            }
        }
    }

    #[test]
    fn the_chain_topic_is_as_deep_as_planned() {
        let shape = Shape::of(crate::config::Scale::Small);
        let topics = plan_topics(&shape, 9);
        let replies = plan_replies(&shape, 9, &topics);
        let chain_topic = shape.hot_topics.len() as u32;
        let chained = replies.plans.iter().filter(|p| p.topic == chain_topic && p.parent.is_some()).count();
        assert_eq!(chained as u32, shape.chains[0] - 1);
    }

    #[test]
    fn the_demo_password_hash_verifies() {
        use argon2::{PasswordHash, PasswordVerifier};
        let hash = password_hash("veritable-demo").expect("hashing works");
        let parsed = PasswordHash::new(&hash).expect("a PHC string");
        assert!(Argon2::default().verify_password(b"veritable-demo", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
    }
}
