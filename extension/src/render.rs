//! `veritable.render_body()`: the BEFORE INSERT/UPDATE trigger that fills
//! `body_html` from `body` on every table with user-written bodies, so no
//! path (not even a DBA's raw INSERT) stores unsanitized HTML.

use pgrx::datum::TryFromDatumError;
use pgrx::heap_tuple::PgHeapTupleError;
use pgrx::prelude::*;
use pgrx::WhoAllocated;
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
///
/// `pgrx::check_for_interrupts!` reads `InterruptPending` as a plain static.
/// Inlined into the guard's loop, whose body (html5ever, monomorphized in
/// this crate) LLVM sees whole, that load was hoisted out of the loop and a
/// 2 ms statement_timeout stopped a 1 MB call only when it returned (53 ms,
/// measured). A volatile read keeps one load per call.
pub fn interrupts() {
    // SAFETY: InterruptPending is a sig_atomic_t that PostgreSQL's signal
    // handlers set; reading it is always valid. ProcessInterrupts is the
    // function CHECK_FOR_INTERRUPTS calls; pgrx guards the FFI boundary, so
    // the ERROR it raises unwinds through Rust frames as a panic.
    unsafe {
        if std::ptr::read_volatile(std::ptr::addr_of!(pg_sys::InterruptPending)) != 0 {
            pg_sys::ProcessInterrupts();
        }
    }
}

pub fn sanitize_html(html: &str) -> String {
    sanitize::sanitize_html_with(html, gucs::max_content_bytes(), &mut interrupts).unwrap_or_else(|e| errors::content(e))
}

pub fn render_markdown(markdown: &str) -> String {
    sanitize::render_markdown_with(markdown, gucs::max_content_bytes(), &mut interrupts).unwrap_or_else(|e| errors::content(e))
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
