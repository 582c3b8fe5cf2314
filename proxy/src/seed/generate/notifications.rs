//! Notifications of mentions and replies.

use super::*;

pub(super) struct MentionRow {
    pub(super) mentioned: i64,
    pub(super) author: i64,
    pub(super) topic_id: i64,
    pub(super) reply_id: i64,
    pub(super) created_at: SystemTime,
}

impl Row for MentionRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.mentioned, &self.author, &self.topic_id, &self.reply_id, &self.created_at]
    }
}

pub(super) struct NotificationRow {
    pub(super) user_id: i64,
    pub(super) kind: &'static str,
    pub(super) actor_id: i64,
    pub(super) topic_id: i64,
    pub(super) reply_id: i64,
    pub(super) read_at: Option<SystemTime>,
    pub(super) created_secs: u64,
    pub(super) created_at: SystemTime,
}

impl NotificationRow {
    pub(super) fn new(
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

pub(super) async fn load_notifications(load: &mut Loader<'_>, extras: ReplyExtras) -> anyhow::Result<()> {
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
