//! Replies in time order across topics, with their mentions.

use super::*;

/// A reply before ids are known: replies get ids in time order across topics,
/// as a live forum would give them.
pub(super) struct ReplyPlan {
    pub(super) topic: u32,
    /// Index of the parent among this topic's replies, if nested.
    pub(super) parent: Option<u32>,
    pub(super) author_id: i64,
    pub(super) created_secs: u64,
    pub(super) is_deleted: bool,
    pub(super) depth: i32,
    pub(super) child_count: i32,
}

pub(super) struct Replies {
    /// Sorted by creation time; a reply's id is its index + 1.
    pub(super) plans: Vec<ReplyPlan>,
    /// `ids[first[t] + k]` is the id of topic t's k-th reply.
    pub(super) ids: Vec<i64>,
    pub(super) first: Vec<usize>,
}

pub(super) fn plan_replies(shape: &Shape, seed: u64, topics: &[TopicPlan]) -> Replies {
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

pub(super) struct ReplyRow {
    pub(super) id: i64,
    pub(super) topic_id: i64,
    pub(super) parent_id: Option<i64>,
    pub(super) author_id: i64,
    pub(super) body: String,
    pub(super) body_html: String,
    pub(super) is_deleted: bool,
    pub(super) created_at: SystemTime,
    pub(super) depth: i32,
    pub(super) child_count: i32,
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
pub(super) struct ReplyExtras {
    pub(super) mentions: Vec<MentionRow>,
    pub(super) notifications: Vec<NotificationRow>,
}

pub(super) async fn load_replies(
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
