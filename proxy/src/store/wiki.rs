//! Wiki pages and revisions.

use tokio_postgres::Row;
use tokio_postgres::types::Type;

use super::{Conn, Sql};
use crate::AppError;

/// The page with its current revision, as GET and a 409 return it.
macro_rules! wiki_page_json {
    () => {
        "SELECT json_build_object('slug', p.slug, 'title', p.title, 'current_revision', p.current_revision,
            'created_at', p.created_at, 'updated_at', p.updated_at,
            'revision', (SELECT json_build_object('number', r.revision_number, 'author_id', r.author_id,
                             'author', u.username, 'body', r.body, 'body_html', r.body_html,
                             'comment', r.comment, 'created_at', r.created_at)
                           FROM wiki_revisions r JOIN users u ON u.id = r.author_id
                          WHERE r.page_id = p.id AND r.revision_number = p.current_revision))::text
           FROM wiki_pages p WHERE p.slug = $1 AND NOT p.is_deleted"
    };
}

/// A wiki save: creates the page when `base_revision` is 0.
pub struct WikiSave<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub author: i64,
    pub base_revision: i32,
    pub body: &'a str,
    pub comment: &'a str,
}

pub const PAGES: Sql = Sql {
    name: "wiki_pages",
    types: &[Type::TEXT, Type::INT4],
    text: concat!(
        "SELECT ",
        crate::page_json!("$2"),
        "
   FROM (SELECT row_number() OVER (ORDER BY slug) AS n, slug AS key,
                json_build_object('slug', slug, 'title', title, 'current_revision', current_revision,
                                  'updated_at', updated_at) AS item
           FROM wiki_pages WHERE NOT is_deleted AND slug > coalesce($1, '')
          ORDER BY slug LIMIT $2 + 1) p"
    ),
};

pub const PAGE: Sql = Sql { name: "wiki_page", types: &[Type::TEXT], text: wiki_page_json!() };

/// Locks the page (or creates it when the base is 0), and writes revision
/// base + 1 only when the base is still current. Returns the current revision
/// seen (NULL: no page) and the new revision.
pub const SAVE: Sql = Sql {
    name: "wiki_save",
    types: &[Type::TEXT, Type::TEXT, Type::INT8, Type::INT4, Type::TEXT, Type::TEXT],
    text:
        "WITH existing AS (SELECT id, current_revision FROM wiki_pages WHERE slug = $1 AND NOT is_deleted FOR UPDATE),
     made AS (
       INSERT INTO wiki_pages (slug, title, author_id)
       SELECT $1, $2, $3 WHERE $4 = 0 AND NOT EXISTS (SELECT 1 FROM existing)
       ON CONFLICT (slug) DO NOTHING
       RETURNING id, current_revision),
     page AS (SELECT * FROM existing UNION ALL SELECT * FROM made),
     saved AS (
       INSERT INTO wiki_revisions (page_id, revision_number, author_id, title, body, comment)
       SELECT id, $4 + 1, $3, $2, $5, $6 FROM page WHERE current_revision = $4
       RETURNING json_build_object('slug', $1::text, 'title', title, 'current_revision', revision_number,
                 'revision', json_build_object('number', revision_number, 'author_id', author_id, 'body', body,
                     'body_html', body_html, 'comment', comment, 'created_at', created_at))::text AS page)
     SELECT (SELECT current_revision FROM page), (SELECT page FROM saved)",
};

pub const REVISIONS: Sql = Sql {
    name: "wiki_revisions",
    types: &[Type::TEXT, Type::INT8, Type::INT4],
    text: concat!(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM wiki_pages WHERE slug = $1 AND NOT is_deleted) THEN NULL
        ELSE ",
        crate::page_json!("$3"),
        " END
   FROM (SELECT row_number() OVER (ORDER BY v.revision_number DESC) AS n, v.revision_number::text AS key,
                json_build_object('number', v.revision_number, 'title', v.title, 'author_id', v.author_id,
                                  'author', u.username, 'comment', v.comment, 'created_at', v.created_at) AS item
           FROM wiki_pages p JOIN wiki_revisions v ON v.page_id = p.id JOIN users u ON u.id = v.author_id
          WHERE p.slug = $1 AND NOT p.is_deleted AND v.revision_number < coalesce($2, 2147483647)
          ORDER BY v.revision_number DESC LIMIT $3 + 1) p"
    ),
};

impl Conn {
    pub async fn wiki_pages(&self, cursor: Option<&str>, limit: i32) -> Result<String, AppError> {
        Ok(self.one(&PAGES, &[&cursor, &limit]).await?.get(0))
    }

    /// The page with its current revision as JSON text, if it exists.
    pub async fn wiki_page(&self, slug: &str) -> Result<Option<String>, tokio_postgres::Error> {
        Ok(self.opt(&PAGE, &[&slug]).await?.map(|row| row.get(0)))
    }

    pub async fn wiki_save(&self, save: &WikiSave<'_>) -> Result<Option<Row>, tokio_postgres::Error> {
        let WikiSave { slug, title, author, base_revision, body, comment } = save;
        self.write(&SAVE, &[slug, title, author, base_revision, body, comment]).await
    }

    /// One page of a wiki page's revisions as JSON text; None for no such page.
    pub async fn wiki_revisions(
        &self,
        slug: &str,
        cursor: Option<i64>,
        limit: i32,
    ) -> Result<Option<String>, AppError> {
        Ok(self.one(&REVISIONS, &[&slug, &cursor, &limit]).await?.get(0))
    }
}
