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

/// Data spans the two years before this instant (2026-11-01T00:00:00Z), so
/// the same seed gives the same rows whenever it runs.
const END_SECS: u64 = 1_793_491_200;
const SPAN_SECS: u64 = 730 * 24 * 3600;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn stream(seed: u64, table: u64) -> ChaCha8Rng {
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
fn skewed(rng: &mut ChaCha8Rng, n: u32) -> i64 {
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

// ---------------------------------------------------------------- users

struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    email: String,
    password_hash: String,
    role: &'static str,
    created_at: SystemTime,
}

impl Row for UserRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.username,
            &self.display_name,
            &self.email,
            &self.password_hash,
            &self.role,
            &self.created_at,
            &self.created_at,
        ]
    }
}

/// The named demo accounts come first: ids 1, 2, 3.
const NAMED: &[(&str, &str, &str)] =
    &[("admin", "Admin", "admin"), ("moderator", "Moderator", "moderator"), ("demo", "Demo User", "member")];

async fn load_users(load: &mut Loader<'_>, shape: &Shape, seed: u64, password_hash: &str) -> anyhow::Result<()> {
    let mut rng = stream(seed, 1);
    let start = END_SECS - SPAN_SECS;
    let rows = (0..shape.users).map(move |n| {
        let (username, display_name, role) = match NAMED.get(n as usize) {
            Some((u, d, r)) => ((*u).to_owned(), (*d).to_owned(), *r),
            None => (text::username(n), text::display_name(n), "member"),
        };
        UserRow {
            id: i64::from(n) + 1,
            email: format!("{username}@example.test"),
            username,
            display_name,
            password_hash: password_hash.to_owned(),
            role,
            created_at: at(start + rng.random_range(0..SPAN_SECS / 4)),
        }
    });
    load.copy(
        "users",
        &[
            ("id", Type::INT8),
            ("username", Type::TEXT),
            ("display_name", Type::TEXT),
            ("email", Type::TEXT),
            ("password_hash", Type::TEXT),
            ("role", Type::TEXT),
            ("created_at", Type::TIMESTAMPTZ),
            ("updated_at", Type::TIMESTAMPTZ),
        ],
        u64::from(shape.users),
        rows,
    )
    .await
}

// ---------------------------------------------------------------- categories, tags

struct CategoryRow {
    id: i64,
    slug: String,
    name: String,
    description: String,
    position: i32,
    created_at: SystemTime,
}

impl Row for CategoryRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.id, &self.slug, &self.name, &self.description, &self.position, &self.created_at]
    }
}

struct TagRow {
    id: i64,
    name: String,
    created_at: SystemTime,
}

impl Row for TagRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.id, &self.name, &self.created_at]
    }
}

async fn load_categories_and_tags(load: &mut Loader<'_>, shape: &Shape, seed: u64) -> anyhow::Result<()> {
    let mut rng = stream(seed, 2);
    let founded = at(END_SECS - SPAN_SECS);
    let categories: Vec<CategoryRow> = (1..=shape.categories)
        .map(|n| {
            let name = text::phrase(&mut rng, 1, 3);
            CategoryRow {
                id: i64::from(n),
                slug: format!("{}-{n}", name.to_lowercase().replace(' ', "-")),
                name,
                description: format!("{}.", text::phrase(&mut rng, 6, 14)),
                position: i32::try_from(n).unwrap_or(i32::MAX),
                created_at: founded,
            }
        })
        .collect();
    load.copy(
        "forum_categories",
        &[
            ("id", Type::INT8),
            ("slug", Type::TEXT),
            ("name", Type::TEXT),
            ("description", Type::TEXT),
            ("position", Type::INT4),
            ("created_at", Type::TIMESTAMPTZ),
        ],
        u64::from(shape.categories),
        categories,
    )
    .await?;
    let tags: Vec<TagRow> = (1..=shape.tags)
        .map(|n| TagRow { id: i64::from(n), name: format!("{}-{n}", text::word(&mut rng)), created_at: founded })
        .collect();
    let columns = [("id", Type::INT8), ("name", Type::TEXT), ("created_at", Type::TIMESTAMPTZ)];
    load.copy("forum_tags", &columns, u64::from(shape.tags), tags).await
}

// ---------------------------------------------------------------- topics

/// What later tables need to know about a topic.
struct TopicPlan {
    author_id: i64,
    created_secs: u64,
    replies: u32,
    is_chain: bool,
}

fn plan_topics(shape: &Shape, seed: u64) -> Vec<TopicPlan> {
    let mut rng = stream(seed, 3);
    let start = END_SECS - SPAN_SECS;
    let special = shape.special_topics() as usize;
    let ordinary = shape.topics as usize - special;
    let counts = ordinary_reply_counts(&mut rng, ordinary, shape.ordinary_replies(), shape.max_ordinary_replies);
    let mut plans = Vec::with_capacity(shape.topics as usize);
    for (i, &n) in shape.hot_topics.iter().chain(shape.chains).enumerate() {
        plans.push(TopicPlan {
            author_id: skewed(&mut rng, shape.users),
            // Old enough for tens of thousands of replies to spread out.
            created_secs: start + rng.random_range(0..SPAN_SECS / 10),
            replies: n,
            is_chain: i >= shape.hot_topics.len(),
        });
    }
    for n in counts {
        plans.push(TopicPlan {
            author_id: skewed(&mut rng, shape.users),
            created_secs: start + rng.random_range(0..SPAN_SECS - 86_400),
            replies: n,
            is_chain: false,
        });
    }
    plans
}

/// Heavy-tailed (Lomax, shape 1.3) reply counts summing exactly to `total`,
/// none above `cap`: about a fifth of topics get no reply, a few get thousands.
fn ordinary_reply_counts(rng: &mut ChaCha8Rng, topics: usize, total: u64, cap: u32) -> Vec<u32> {
    let weights: Vec<f64> = (0..topics).map(|_| (1.0 - rng.random::<f64>()).powf(-1.0 / 1.3) - 1.0).collect();
    let cap_f = f64::from(cap);
    let filled = |k: f64| -> f64 { weights.iter().map(|w| (w * k).min(cap_f).floor()).sum() };
    // Find the scale k at which the capped, floored counts reach `total`.
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while filled(hi) < total as f64 && hi < 1e12 {
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if filled(mid) < total as f64 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let mut counts: Vec<u32> = weights.iter().map(|w| (w * lo).min(cap_f).floor() as u32).collect();
    let mut missing = total.saturating_sub(counts.iter().map(|&c| u64::from(c)).sum());
    // Hand out the rounding remainder one by one, in a deterministic order.
    let mut i = 0;
    while missing > 0 && !counts.is_empty() {
        if counts[i] < cap {
            counts[i] += 1;
            missing -= 1;
        }
        i = (i + 1) % counts.len();
    }
    counts
}

struct TopicRow {
    id: i64,
    category_id: i64,
    author_id: i64,
    title: String,
    body: String,
    body_html: String,
    is_pinned: bool,
    is_locked: bool,
    is_deleted: bool,
    created_at: SystemTime,
}

impl Row for TopicRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.category_id,
            &self.author_id,
            &self.title,
            &self.body,
            &self.body_html,
            &self.is_pinned,
            &self.is_locked,
            &self.is_deleted,
            &self.created_at,
            &self.created_at,
            &POLICY_VERSION,
        ]
    }
}

struct TopicTagRow(i64, i64);

impl Row for TopicTagRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.0, &self.1]
    }
}

async fn load_topics(load: &mut Loader<'_>, shape: &Shape, seed: u64, topics: &[TopicPlan]) -> anyhow::Result<()> {
    let mut rng = stream(seed, 4);
    let special = shape.special_topics() as usize;
    let rows = topics.iter().enumerate().map(|(i, plan)| {
        let ordinary = i >= special;
        let body = text::body(&mut rng, 1..=3, None);
        TopicRow {
            id: i as i64 + 1,
            category_id: skewed(&mut rng, shape.categories),
            author_id: plan.author_id,
            title: text::phrase(&mut rng, 3, 9),
            body: body.markdown,
            body_html: body.html,
            is_pinned: ordinary && rng.random_ratio(1, 200),
            is_locked: ordinary && rng.random_ratio(1, 100),
            is_deleted: ordinary && rng.random_ratio(1, 150),
            created_at: at(plan.created_secs),
        }
    });
    load.copy(
        "forum_topics",
        &[
            ("id", Type::INT8),
            ("category_id", Type::INT8),
            ("author_id", Type::INT8),
            ("title", Type::TEXT),
            ("body", Type::TEXT),
            ("body_html", Type::TEXT),
            ("is_pinned", Type::BOOL),
            ("is_locked", Type::BOOL),
            ("is_deleted", Type::BOOL),
            ("created_at", Type::TIMESTAMPTZ),
            ("updated_at", Type::TIMESTAMPTZ),
            ("render_version", Type::INT4),
        ],
        topics.len() as u64,
        rows,
    )
    .await?;

    let mut tag_rows = Vec::new();
    for topic in 1..=topics.len() as i64 {
        let mut chosen: Vec<i64> = (0..rng.random_range(0..=3)).map(|_| skewed(&mut rng, shape.tags)).collect();
        chosen.sort_unstable();
        chosen.dedup();
        tag_rows.extend(chosen.into_iter().map(|tag| TopicTagRow(topic, tag)));
    }
    let expected = tag_rows.len() as u64;
    load.copy("forum_topic_tags", &[("topic_id", Type::INT8), ("tag_id", Type::INT8)], expected, tag_rows).await
}

// ---------------------------------------------------------------- replies

/// A reply before ids are known: replies get ids in time order across topics,
/// as a live forum would give them.
struct ReplyPlan {
    topic: u32,
    /// Index of the parent among this topic's replies, if nested.
    parent: Option<u32>,
    author_id: i64,
    created_secs: u64,
    is_deleted: bool,
    depth: i32,
    child_count: i32,
}

struct Replies {
    /// Sorted by creation time; a reply's id is its index + 1.
    plans: Vec<ReplyPlan>,
    /// `ids[first[t] + k]` is the id of topic t's k-th reply.
    ids: Vec<i64>,
    first: Vec<usize>,
}

fn plan_replies(shape: &Shape, seed: u64, topics: &[TopicPlan]) -> Replies {
    let mut rng = stream(seed, 5);
    let mut plans = Vec::with_capacity(shape.replies as usize);
    let mut first = Vec::with_capacity(topics.len());
    let mut order: Vec<(u64, u32)> = Vec::with_capacity(shape.replies as usize);
    for (t, topic) in topics.iter().enumerate() {
        first.push(plans.len());
        let n = topic.replies;
        let mean_gap = (END_SECS - topic.created_secs) / (u64::from(n) + 1);
        let mut clock = topic.created_secs;
        for k in 0..n {
            clock = (clock + rng.random_range(1..=mean_gap.max(1) * 2)).min(END_SECS - 1);
            let parent = if topic.is_chain {
                k.checked_sub(1)
            } else if k == 0 || rng.random_ratio(35, 100) {
                None
            } else {
                // Prefer answering recent replies.
                let u: f64 = rng.random();
                Some(k - 1 - ((u * u * u * f64::from(k)) as u32).min(k - 1))
            };
            let topic_start = first[t];
            let depth = match parent {
                Some(k) => {
                    let parent_plan: &mut ReplyPlan = &mut plans[topic_start + k as usize];
                    parent_plan.child_count += 1;
                    parent_plan.depth + 1
                }
                None => 0,
            };
            order.push((clock, plans.len() as u32));
            plans.push(ReplyPlan {
                topic: t as u32,
                parent,
                author_id: skewed(&mut rng, shape.users),
                created_secs: clock,
                is_deleted: !topic.is_chain && rng.random_ratio(1, 50),
                depth,
                child_count: 0,
            });
        }
    }
    // Ids follow time; ties keep planning order, so a parent still precedes its children.
    order.sort_unstable();
    let mut ids = vec![0i64; plans.len()];
    for (position, &(_, planned)) in order.iter().enumerate() {
        ids[planned as usize] = position as i64 + 1;
    }
    let mut slots: Vec<Option<ReplyPlan>> = plans.into_iter().map(Some).collect();
    let plans = order.iter().filter_map(|&(_, planned)| slots[planned as usize].take()).collect();
    Replies { plans, ids, first }
}

struct ReplyRow {
    id: i64,
    topic_id: i64,
    parent_id: Option<i64>,
    author_id: i64,
    body: String,
    body_html: String,
    is_deleted: bool,
    created_at: SystemTime,
    depth: i32,
    child_count: i32,
}

impl Row for ReplyRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.topic_id,
            &self.parent_id,
            &self.author_id,
            &self.body,
            &self.body_html,
            &self.is_deleted,
            &self.created_at,
            &self.created_at,
            &self.depth,
            &self.child_count,
            &POLICY_VERSION,
        ]
    }
}

/// Rows that replies give rise to, loaded after them.
struct ReplyExtras {
    mentions: Vec<MentionRow>,
    notifications: Vec<NotificationRow>,
}

async fn load_replies(
    load: &mut Loader<'_>,
    shape: &Shape,
    seed: u64,
    topics: &[TopicPlan],
    replies: &Replies,
) -> anyhow::Result<ReplyExtras> {
    let mut rng = stream(seed, 6);
    let mut extras = ReplyExtras { mentions: Vec::new(), notifications: Vec::new() };
    let extras_ref = &mut extras;
    let rows = replies.plans.iter().enumerate().map(|(i, plan)| {
        let id = i as i64 + 1;
        let topic = &topics[plan.topic as usize];
        let topic_id = i64::from(plan.topic) + 1;
        let created_at = at(plan.created_secs);
        let mentioned = if rng.random_ratio(1, 50) {
            Some(skewed(&mut rng, shape.users)).filter(|&user| user != plan.author_id)
        } else {
            None
        };
        let mention_name = mentioned.map(username_of);
        let body = text::body(&mut rng, 1..=2, mention_name.as_deref());
        if let Some(user) = mentioned {
            extras_ref.mentions.push(MentionRow {
                mentioned: user,
                author: plan.author_id,
                topic_id,
                reply_id: id,
                created_at,
            });
            extras_ref.notifications.push(NotificationRow::new(
                &mut rng,
                user,
                "mention",
                plan.author_id,
                topic_id,
                id,
                plan.created_secs,
            ));
        }
        if topic.author_id != plan.author_id && rng.random_ratio(3, 100) {
            extras_ref.notifications.push(NotificationRow::new(
                &mut rng,
                topic.author_id,
                "reply",
                plan.author_id,
                topic_id,
                id,
                plan.created_secs,
            ));
        }
        ReplyRow {
            id,
            topic_id,
            parent_id: plan.parent.map(|k| replies.ids[replies.first[plan.topic as usize] + k as usize]),
            author_id: plan.author_id,
            body: body.markdown,
            body_html: body.html,
            is_deleted: plan.is_deleted,
            created_at,
            depth: plan.depth,
            child_count: plan.child_count,
        }
    });
    load.copy(
        "forum_replies",
        &[
            ("id", Type::INT8),
            ("topic_id", Type::INT8),
            ("parent_id", Type::INT8),
            ("author_id", Type::INT8),
            ("body", Type::TEXT),
            ("body_html", Type::TEXT),
            ("is_deleted", Type::BOOL),
            ("created_at", Type::TIMESTAMPTZ),
            ("updated_at", Type::TIMESTAMPTZ),
            ("depth", Type::INT4),
            ("child_count", Type::INT4),
            ("render_version", Type::INT4),
        ],
        replies.plans.len() as u64,
        rows,
    )
    .await?;
    Ok(extras)
}

/// The username the seed gives user `id` (see `load_users`).
pub fn username_of(id: i64) -> String {
    let n = u32::try_from(id - 1).unwrap_or(0);
    match NAMED.get(n as usize) {
        Some((name, _, _)) => (*name).to_owned(),
        None => text::username(n),
    }
}

// ---------------------------------------------------------------- notifications, mentions

struct MentionRow {
    mentioned: i64,
    author: i64,
    topic_id: i64,
    reply_id: i64,
    created_at: SystemTime,
}

impl Row for MentionRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.mentioned, &self.author, &self.topic_id, &self.reply_id, &self.created_at]
    }
}

struct NotificationRow {
    user_id: i64,
    kind: &'static str,
    actor_id: i64,
    topic_id: i64,
    reply_id: i64,
    read_at: Option<SystemTime>,
    created_secs: u64,
    created_at: SystemTime,
}

impl NotificationRow {
    fn new(
        rng: &mut ChaCha8Rng,
        user_id: i64,
        kind: &'static str,
        actor_id: i64,
        topic_id: i64,
        reply_id: i64,
        created_secs: u64,
    ) -> Self {
        let read_at = rng.random_ratio(7, 10).then(|| at((created_secs + rng.random_range(60..86_400)).min(END_SECS)));
        Self { user_id, kind, actor_id, topic_id, reply_id, read_at, created_secs, created_at: at(created_secs) }
    }
}

impl Row for NotificationRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.user_id, &self.kind, &self.actor_id, &self.topic_id, &self.reply_id, &self.read_at, &self.created_at]
    }
}

async fn load_notifications(load: &mut Loader<'_>, extras: ReplyExtras) -> anyhow::Result<()> {
    let ReplyExtras { mentions, mut notifications } = extras;
    let count = mentions.len() as u64;
    load.copy(
        "mentions",
        &[
            ("mentioned_user_id", Type::INT8),
            ("author_id", Type::INT8),
            ("topic_id", Type::INT8),
            ("reply_id", Type::INT8),
            ("created_at", Type::TIMESTAMPTZ),
        ],
        count,
        mentions,
    )
    .await?;
    notifications.sort_by_key(|n| n.created_secs);
    let count = notifications.len() as u64;
    load.copy(
        "notifications",
        &[
            ("user_id", Type::INT8),
            ("kind", Type::TEXT),
            ("actor_id", Type::INT8),
            ("topic_id", Type::INT8),
            ("reply_id", Type::INT8),
            ("read_at", Type::TIMESTAMPTZ),
            ("created_at", Type::TIMESTAMPTZ),
        ],
        count,
        notifications,
    )
    .await
}

// ---------------------------------------------------------------- wiki

struct WikiPageRow {
    id: i64,
    slug: String,
    title: String,
    author_id: i64,
    current_revision: i32,
    created_at: SystemTime,
    updated_at: SystemTime,
}

impl Row for WikiPageRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.slug,
            &self.title,
            &self.author_id,
            &self.current_revision,
            &self.created_at,
            &self.updated_at,
        ]
    }
}

struct WikiRevisionRow {
    page_id: i64,
    revision_number: i32,
    author_id: i64,
    title: String,
    body: String,
    body_html: String,
    comment: String,
    created_at: SystemTime,
}

impl Row for WikiRevisionRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.page_id,
            &self.revision_number,
            &self.author_id,
            &self.title,
            &self.body,
            &self.body_html,
            &self.comment,
            &self.created_at,
            &POLICY_VERSION,
        ]
    }
}

async fn load_wiki(load: &mut Loader<'_>, shape: &Shape, seed: u64) -> anyhow::Result<()> {
    let mut rng = stream(seed, 7);
    let start = END_SECS - SPAN_SECS;
    let mut pages = Vec::with_capacity(shape.wiki_pages as usize);
    let mut revisions = Vec::new();
    for n in 1..=shape.wiki_pages {
        let title = text::phrase(&mut rng, 2, 6);
        let slug = format!("{}-{n}", title.to_lowercase().replace(' ', "-"));
        let count = rng.random_range(1..=shape.max_revisions);
        let created = start + rng.random_range(0..SPAN_SECS / 2);
        let mut clock = created;
        let author = skewed(&mut rng, shape.users);
        for r in 1..=count {
            let body = text::body(&mut rng, 2..=6, None);
            revisions.push(WikiRevisionRow {
                page_id: i64::from(n),
                revision_number: r as i32,
                author_id: if r == 1 { author } else { skewed(&mut rng, shape.users) },
                title: title.clone(),
                body: body.markdown,
                body_html: body.html,
                comment: if r == 1 { "Created".to_owned() } else { text::phrase(&mut rng, 2, 6) },
                created_at: at(clock),
            });
            clock = (clock + rng.random_range(3_600..=SPAN_SECS / 20)).min(END_SECS - 1);
        }
        let last = revisions.last().map_or(at(created), |r| r.created_at);
        pages.push(WikiPageRow {
            id: i64::from(n),
            slug,
            title,
            author_id: author,
            current_revision: count as i32,
            created_at: at(created),
            updated_at: last,
        });
    }
    load.copy(
        "wiki_pages",
        &[
            ("id", Type::INT8),
            ("slug", Type::TEXT),
            ("title", Type::TEXT),
            ("author_id", Type::INT8),
            ("current_revision", Type::INT4),
            ("created_at", Type::TIMESTAMPTZ),
            ("updated_at", Type::TIMESTAMPTZ),
        ],
        u64::from(shape.wiki_pages),
        pages,
    )
    .await?;
    let count = revisions.len() as u64;
    load.copy(
        "wiki_revisions",
        &[
            ("page_id", Type::INT8),
            ("revision_number", Type::INT4),
            ("author_id", Type::INT8),
            ("title", Type::TEXT),
            ("body", Type::TEXT),
            ("body_html", Type::TEXT),
            ("comment", Type::TEXT),
            ("created_at", Type::TIMESTAMPTZ),
            ("render_version", Type::INT4),
        ],
        count,
        revisions,
    )
    .await
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
