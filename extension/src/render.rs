//! `veritable.render_body()`: the BEFORE INSERT/UPDATE trigger that fills
//! `body_html` from `body` on every table with user-written bodies, so no
//! path (not even a DBA's raw INSERT) stores unsanitized HTML.

use pgrx::WhoAllocated;
use pgrx::datum::TryFromDatumError;
use pgrx::heap_tuple::PgHeapTupleError;
use pgrx::prelude::*;
use veritable_core::sanitize::{self, POLICY_VERSION};

use crate::{errors, gucs};

#[derive(Debug, thiserror::Error)]
pub enum RenderTriggerError {
    #[error("veritable.render_body() must run BEFORE INSERT OR UPDATE FOR EACH ROW")]
    WrongEvent,
    #[error("the table needs text columns body and body_html and an integer render_version: {0}")]
    Tuple(#[from] PgHeapTupleError),
    #[error("the table needs text columns body and body_html and an integer render_version: {0}")]
    Datum(#[from] TryFromDatumError),
}

/// Checks for query cancellation and `statement_timeout` while parsing: the
/// sanitizer calls it between chunks, so a cancel takes effect within
/// milliseconds instead of when the call returns.
pub fn interrupts() {
    pgrx::check_for_interrupts!();
}

pub fn sanitize_html(html: &str) -> String {
    sanitize::sanitize_html_with(html, gucs::max_content_bytes(), &mut interrupts)
        .unwrap_or_else(|e| errors::content(e))
}

pub fn render_markdown(markdown: &str) -> String {
    sanitize::render_markdown_with(markdown, gucs::max_content_bytes(), &mut interrupts)
        .unwrap_or_else(|e| errors::content(e))
}

#[pg_trigger]
fn render_body<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, impl WhoAllocated>>, RenderTriggerError> {
    let mut row = trigger.new().ok_or(RenderTriggerError::WrongEvent)?.into_owned();
    let body: Option<String> = row.get_by_name("body")?;
    let html = match body {
        Some(body) => render_markdown(&body),
        None => String::new(),
    };
    row.set_by_name("body_html", html)?;
    row.set_by_name("render_version", POLICY_VERSION)?;
    Ok(Some(row))
}
