//! The extension's settings. Each can be SET per session or per role, within
//! the bounds given here.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use veritable_core::rules;

pub static MAX_REPLY_DEPTH: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static MAX_REPLY_ROWS: GucSetting<i32> = GucSetting::<i32>::new(500);
pub static MAX_CONTENT_BYTES: GucSetting<i32> = GucSetting::<i32>::new(rules::CONTENT_BYTES_DEFAULT);
pub static MAX_REPLY_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1_000_000);

/// Hard ceilings: a call asking for more is refused, whatever the settings say.
pub const DEPTH_CEILING: i32 = rules::REPLY_DEPTH_CEILING;
pub const ROWS_CEILING: i32 = rules::REPLY_ROWS_CEILING;
/// The tables' CHECK constraints allow bodies of at most 1,000,000 bytes.
pub const CONTENT_CEILING: i32 = rules::CONTENT_BYTES_CEILING;
/// One page of a reply walk holds at most this much HTML, whatever the setting.
pub const REPLY_BYTES_CEILING: i32 = 64_000_000;

pub fn register() {
    GucRegistry::define_int_guc(
        c"veritable.max_reply_depth",
        c"Default depth cap of veritable.reply_tree (levels returned).",
        c"Deeper replies are not returned; their ancestors report children_cut.",
        &MAX_REPLY_DEPTH,
        1,
        DEPTH_CEILING,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"veritable.max_reply_rows",
        c"Default row cap of veritable.reply_tree.",
        c"A walk stops after this many rows; continue with after_reply_id.",
        &MAX_REPLY_ROWS,
        1,
        ROWS_CEILING,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"veritable.max_reply_bytes",
        c"Bytes of body HTML one page of veritable.reply_tree may hold.",
        c"The row that would pass it ends the page (has_more); the first row always fits.",
        &MAX_REPLY_BYTES,
        1,
        REPLY_BYTES_CEILING,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"veritable.max_content_bytes",
        c"Largest input, in bytes, that sanitize_html and render_markdown accept.",
        c"Larger input is refused with SQLSTATE 22001; it is never truncated.",
        &MAX_CONTENT_BYTES,
        1,
        CONTENT_CEILING,
        GucContext::Userset,
        GucFlags::default(),
    );
}

pub fn max_reply_bytes() -> usize {
    usize::try_from(MAX_REPLY_BYTES.get()).unwrap_or(0)
}

pub fn max_content_bytes() -> usize {
    usize::try_from(MAX_CONTENT_BYTES.get()).unwrap_or(0)
}
