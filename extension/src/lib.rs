//! The veritable PostgreSQL extension. Every SQL function lives in schema
//! `veritable` and is a thin wrapper over plain Rust (`veritable-core`, and
//! the SPI modules here); see STYLE.md.

mod errors;
mod gucs;
mod plans;
mod render;
mod replies;
mod topics;

use pgrx::prelude::*;
use veritable_core::tree::Root;
use veritable_core::{mentions, sanitize};

::pgrx::pg_module_magic!(name, version);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    quiet_backtraces();
    gucs::register();
}

/// pgrx's panic hook captures a Rust backtrace for every ERROR that passes
/// through Rust (our own refusals, and a cancel that lands inside the
/// sanitizer), and prints it into DETAIL. With `RUST_BACKTRACE=1` in the
/// postmaster's environment, the first such ERROR in a backend took 85 ms
/// to symbolize (a 2 ms statement_timeout on a 1 MB call answered after
/// 87 ms; later ones in the same backend after 2.8 ms), and each refusal
/// paid ~0.3 ms. Backtraces stay off unless `RUST_LIB_BACKTRACE` asks for them.
fn quiet_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: _PG_init runs on the backend's only thread, before any
        // Rust code of ours reads the environment.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// The extension's version, as built: `SELECT veritable.version()`.
#[pg_extern(immutable, strict, parallel_safe)]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The sanitizer policy version stored beside rendered HTML (`render_version`).
#[pg_extern(immutable, strict, parallel_safe)]
fn policy_version() -> i32 {
    sanitize::POLICY_VERSION
}

/// Sanitized HTML (ammonia, linear time). Input over `veritable.max_content_bytes`
/// is refused with SQLSTATE 22001; input the sanitizer's cost bounds refuse
/// (nesting deeper than 256 levels, parser work past a budget linear in the
/// input, a tag or comment over 4 KB) with 54000.
#[pg_extern(immutable, strict, parallel_safe)]
fn sanitize_html(html: &str) -> String {
    render::sanitize_html(html)
}

/// Markdown rendered with pulldown-cmark, then sanitized like `sanitize_html`;
/// HTML output over 8× the input limit is refused with 54000.
#[pg_extern(immutable, strict, parallel_safe)]
fn render_markdown(markdown: &str) -> String {
    render::render_markdown(markdown)
}

/// Distinct lower-cased `@usernames` in a text, at most 20, in order.
#[pg_extern(immutable, strict, parallel_safe)]
fn mentions(text: &str) -> Vec<String> {
    mentions::parse(text)
}

/// One row of `reply_tree` / `reply_subtree`, in their column order.
type ReplyRow =
    (i64, Option<i64>, i32, String, i64, String, Option<String>, TimestampWithTimeZone, i32, bool, bool, bool);

fn reply_rows(
    topic_id: Option<i64>,
    root: Root,
    max_depth: Option<i32>,
    max_rows: Option<i32>,
    after: Option<i64>,
) -> Vec<ReplyRow> {
    let limits = replies::limits(max_depth, max_rows);
    let (rows, more, base) = replies::walk(topic_id, root, limits, after);
    rows.into_iter()
        .map(|replies::Shown { visit, author_name }| {
            let r = visit.row;
            let depth = base.saturating_add(i32::try_from(visit.depth).unwrap_or(i32::MAX));
            (
                r.id,
                r.parent_id,
                depth,
                visit.path,
                r.author_id,
                author_name,
                r.body_html,
                r.created_at,
                r.child_count,
                visit.children_cut,
                r.is_deleted,
                more,
            )
        })
        .collect()
}

// reply_tree and reply_subtree spell out the same TableIterator type: pgrx
// derives the SQL signature from the tokens of the return type, and a type
// alias there does not resolve (tried: "type ident ... did not resolve").

/// The replies of a topic in display order (depth-first, siblings by id),
/// at most `max_depth` levels and `max_rows` rows (NULL: the
/// `veritable.max_reply_depth` / `veritable.max_reply_rows` settings).
/// When `has_more`, call again with `after_reply_id` = the last row's id;
/// where `children_cut`, call `reply_subtree` on that row.
#[allow(clippy::type_complexity)] // pgrx reads the SQL signature from this type
#[pg_extern(stable, parallel_safe)]
fn reply_tree(
    topic_id: Option<i64>,
    max_depth: default!(Option<i32>, "NULL"),
    max_rows: default!(Option<i32>, "NULL"),
    after_reply_id: default!(Option<i64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(parent_id, Option<i64>),
        name!(depth, i32),
        name!(path, String),
        name!(author_id, i64),
        name!(author_name, String),
        name!(body_html, Option<String>),
        name!(created_at, TimestampWithTimeZone),
        name!(child_count, i32),
        name!(children_cut, bool),
        name!(is_deleted, bool),
        name!(has_more, bool),
    ),
> {
    let Some(topic_id) = topic_id else { return TableIterator::new(Vec::new()) };
    TableIterator::new(reply_rows(Some(topic_id), Root::Topic, max_depth, max_rows, after_reply_id))
}

/// One reply and its descendants, with the same caps and continuation as
/// `reply_tree`; `depth` stays absolute, `path` starts at this reply.
#[allow(clippy::type_complexity)] // pgrx reads the SQL signature from this type
#[pg_extern(stable, parallel_safe)]
fn reply_subtree(
    reply_id: Option<i64>,
    max_depth: default!(Option<i32>, "NULL"),
    max_rows: default!(Option<i32>, "NULL"),
    after_reply_id: default!(Option<i64>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(parent_id, Option<i64>),
        name!(depth, i32),
        name!(path, String),
        name!(author_id, i64),
        name!(author_name, String),
        name!(body_html, Option<String>),
        name!(created_at, TimestampWithTimeZone),
        name!(child_count, i32),
        name!(children_cut, bool),
        name!(is_deleted, bool),
        name!(has_more, bool),
    ),
> {
    let Some(reply_id) = reply_id else { return TableIterator::new(Vec::new()) };
    TableIterator::new(reply_rows(None, Root::Reply(reply_id), max_depth, max_rows, after_reply_id))
}

/// A page of topics: pinned first, then by last activity. NULL category =
/// all categories; NULL cursor = the first page; page_size 1..100 (NULL: 20).
/// `next_cursor` (the same on every row) is NULL on the last page.
#[allow(clippy::type_complexity)] // pgrx reads the SQL signature from this type
#[pg_extern(stable, parallel_safe)]
fn topic_page(
    category_id: Option<i64>,
    cursor: Option<&str>,
    page_size: default!(Option<i32>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(id, i64),
        name!(title, String),
        name!(author_id, i64),
        name!(author_name, String),
        name!(author_display_name, String),
        name!(category_id, i64),
        name!(category_name, String),
        name!(reply_count, i32),
        name!(view_count, i64),
        name!(participant_count, i32),
        name!(last_reply_at, Option<TimestampWithTimeZone>),
        name!(last_activity_at, TimestampWithTimeZone),
        name!(created_at, TimestampWithTimeZone),
        name!(is_pinned, bool),
        name!(is_locked, bool),
        name!(tags, Vec<String>),
        name!(next_cursor, Option<String>),
    ),
> {
    let (rows, next) = topics::page(category_id, cursor, page_size);
    TableIterator::new(rows.into_iter().map(move |t| {
        (
            t.id,
            t.title,
            t.author_id,
            t.author_name,
            t.author_display_name,
            t.category_id,
            t.category_name,
            t.reply_count,
            t.view_count,
            t.participant_count,
            t.last_reply_at,
            t.last_activity_at,
            t.created_at,
            t.is_pinned,
            t.is_locked,
            t.tags,
            next.clone(),
        )
    }))
}

/// The SQL text of the extension's hot queries, so a test (or a DBA) can
/// EXPLAIN exactly what runs: `PREPARE q AS <sql>; EXPLAIN EXECUTE q(...)`.
#[pg_extern(immutable, parallel_safe)]
fn hot_queries() -> TableIterator<'static, (name!(name, &'static str), name!(sql, &'static str))> {
    TableIterator::new(replies::QUERIES.iter().chain(topics::QUERIES).copied())
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn sqlstate_of(sql: &str) -> String {
        // PgTryBuilder catches the ERROR so the test can look at it.
        PgTryBuilder::new(|| {
            Spi::run(sql).expect("the statement raises instead");
            "no error".to_owned()
        })
        .catch_others(|e| match e {
            pgrx::pg_sys::panic::CaughtError::PostgresError(report) => format!("{:?}", report.sql_error_code()),
            other => format!("{other:?}"),
        })
        .execute()
    }

    #[pg_test]
    fn version_is_the_crate_version() {
        assert_eq!(crate::version(), env!("CARGO_PKG_VERSION"));
    }

    #[pg_test]
    fn version_is_callable_from_sql_in_schema_veritable() {
        let v = Spi::get_one::<String>("SELECT veritable.version()").expect("SPI works");
        assert_eq!(v.as_deref(), Some(env!("CARGO_PKG_VERSION")));
    }

    #[pg_test]
    fn sanitize_html_strips_scripts_and_keeps_allowed_markup() {
        let out = Spi::get_one::<String>(
            "SELECT veritable.sanitize_html('<p onclick=x>hi <a href=\"javascript:alert(1)\">x</a><script>alert(1)</script></p>')",
        )
        .expect("SPI works");
        assert_eq!(out.as_deref(), Some("<p>hi <a rel=\"nofollow ugc noopener\">x</a></p>"));
    }

    #[pg_test]
    fn render_markdown_renders_then_sanitizes() {
        let out = Spi::get_one::<String>("SELECT veritable.render_markdown('**b** <img src=x onerror=alert(1)>')")
            .expect("SPI works");
        assert_eq!(out.as_deref(), Some("<p><strong>b</strong> </p>\n"));
    }

    #[pg_test]
    fn null_in_null_out() {
        assert_eq!(Spi::get_one::<String>("SELECT veritable.sanitize_html(NULL)").expect("SPI works"), None);
        assert_eq!(Spi::get_one::<String>("SELECT veritable.render_markdown(NULL)").expect("SPI works"), None);
        assert_eq!(
            Spi::get_one::<String>("SELECT veritable.sanitize_html('')").expect("SPI works").as_deref(),
            Some("")
        );
    }

    #[pg_test]
    fn the_size_limit_is_exact_and_raises_22001() {
        Spi::run("SET veritable.max_content_bytes = 10").expect("SET works");
        let at = Spi::get_one::<String>("SELECT veritable.sanitize_html(repeat('a', 10))").expect("SPI works");
        assert_eq!(at.as_deref(), Some("aaaaaaaaaa"));
        assert_eq!(
            sqlstate_of("SELECT veritable.sanitize_html(repeat('a', 11))"),
            "ERRCODE_STRING_DATA_RIGHT_TRUNCATION"
        );
        assert_eq!(
            sqlstate_of("SELECT veritable.render_markdown(repeat('a', 11))"),
            "ERRCODE_STRING_DATA_RIGHT_TRUNCATION"
        );
        // Bytes, not characters: five two-byte letters fit, six do not.
        assert!(Spi::get_one::<String>("SELECT veritable.sanitize_html(repeat('é', 5))").is_ok());
        assert_eq!(
            sqlstate_of("SELECT veritable.sanitize_html(repeat('é', 6))"),
            "ERRCODE_STRING_DATA_RIGHT_TRUNCATION"
        );
    }

    #[pg_test]
    fn deep_nesting_raises_54000_instead_of_burning_cpu() {
        assert_eq!(
            sqlstate_of("SELECT veritable.sanitize_html(repeat('<ul><li>', 10000) || 'x')"),
            "ERRCODE_PROGRAM_LIMIT_EXCEEDED"
        );
    }

    #[pg_test]
    fn mentions_are_parsed() {
        let found = Spi::get_one::<Vec<String>>("SELECT veritable.mentions('hi @Ada_1, mail a@b.test, @ada_1 @bob_2')")
            .expect("SPI works");
        assert_eq!(found, Some(vec!["ada_1".to_owned(), "bob_2".to_owned()]));
    }

    #[pg_test]
    fn reply_caps_are_checked() {
        assert_eq!(sqlstate_of("SELECT * FROM veritable.reply_tree(1, 0, 10)"), "ERRCODE_INVALID_PARAMETER_VALUE");
        assert_eq!(sqlstate_of("SELECT * FROM veritable.reply_tree(1, 10, 10001)"), "ERRCODE_INVALID_PARAMETER_VALUE");
        assert_eq!(sqlstate_of("SELECT * FROM veritable.reply_tree(1, 1001, 10)"), "ERRCODE_INVALID_PARAMETER_VALUE");
    }

    #[pg_test]
    fn gucs_have_their_defaults() {
        for (name, value) in [
            ("veritable.max_reply_depth", "10"),
            ("veritable.max_reply_rows", "500"),
            ("veritable.max_content_bytes", "100000"),
            ("veritable.max_reply_bytes", "1000000"),
        ] {
            let shown = Spi::get_one::<String>(&format!("SELECT current_setting('{name}')")).expect("SPI works");
            assert_eq!(shown.as_deref(), Some(value), "{name}");
        }
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
