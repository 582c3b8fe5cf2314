//! Topics: their plan (reply counts, hot topics, chains) and rows, with their tags.

use super::*;

/// What later tables need to know about a topic.
pub(super) struct TopicPlan {
    pub(super) author_id: i64,
    pub(super) created_secs: u64,
    pub(super) replies: u32,
    pub(super) is_chain: bool,
}

pub(super) fn plan_topics(shape: &Shape, seed: u64) -> Vec<TopicPlan> {
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
pub(super) fn ordinary_reply_counts(rng: &mut ChaCha8Rng, topics: usize, total: u64, cap: u32) -> Vec<u32> {
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

pub(super) struct TopicRow {
    pub(super) id: i64,
    pub(super) category_id: i64,
    pub(super) author_id: i64,
    pub(super) title: String,
    pub(super) body: String,
    pub(super) body_html: String,
    pub(super) is_pinned: bool,
    pub(super) is_locked: bool,
    pub(super) is_deleted: bool,
    pub(super) created_at: SystemTime,
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

pub(super) struct TopicTagRow(pub(super) i64, pub(super) i64);

impl Row for TopicTagRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.0, &self.1]
    }
}

pub(super) async fn load_topics(
    load: &mut Loader<'_>,
    shape: &Shape,
    seed: u64,
    topics: &[TopicPlan],
) -> anyhow::Result<()> {
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
