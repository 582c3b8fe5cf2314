//! Wiki pages and their revisions.

use super::*;

pub(super) struct WikiPageRow {
    pub(super) id: i64,
    pub(super) slug: String,
    pub(super) title: String,
    pub(super) author_id: i64,
    pub(super) current_revision: i32,
    pub(super) created_at: SystemTime,
    pub(super) updated_at: SystemTime,
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

pub(super) struct WikiRevisionRow {
    pub(super) page_id: i64,
    pub(super) revision_number: i32,
    pub(super) author_id: i64,
    pub(super) title: String,
    pub(super) body: String,
    pub(super) body_html: String,
    pub(super) comment: String,
    pub(super) created_at: SystemTime,
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

pub(super) async fn load_wiki(load: &mut Loader<'_>, shape: &Shape, seed: u64) -> anyhow::Result<()> {
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
