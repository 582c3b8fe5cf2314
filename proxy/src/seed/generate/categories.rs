//! Categories and tags.

use super::*;

pub(super) struct CategoryRow {
    pub(super) id: i64,
    pub(super) slug: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) position: i32,
    pub(super) created_at: SystemTime,
}

impl Row for CategoryRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.id, &self.slug, &self.name, &self.description, &self.position, &self.created_at]
    }
}

pub(super) struct TagRow {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) created_at: SystemTime,
}

impl Row for TagRow {
    fn values(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![&self.id, &self.name, &self.created_at]
    }
}

pub(super) async fn load_categories_and_tags(load: &mut Loader<'_>, shape: &Shape, seed: u64) -> anyhow::Result<()> {
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
