//! PostgreSQL ERRORs with fitting SQLSTATEs. Each function raises and does
//! not return.

use pgrx::prelude::*;
use veritable_core::sanitize::SanitizeError;

/// 22023: an argument out of its allowed range, or a cursor that was tampered with.
pub fn invalid_parameter(message: String) -> ! {
    ereport!(ERROR, PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, message);
}

/// P0002: the thing asked for does not exist.
pub fn no_data(message: String) -> ! {
    ereport!(ERROR, PgSqlErrorCode::ERRCODE_NO_DATA_FOUND, message);
}

/// XX000: a query of ours failed; the message carries PostgreSQL's reason.
pub fn internal(message: String) -> ! {
    ereport!(ERROR, PgSqlErrorCode::ERRCODE_INTERNAL_ERROR, message);
}

/// 22001 for oversized input (never truncated); 54000 for input within the
/// size limit that the sanitizer's cost bounds refuse (nesting, parser work,
/// an overlong tag, rendered HTML past its bound).
pub fn content(error: SanitizeError) -> ! {
    let code = match error {
        SanitizeError::TooLarge(_) => PgSqlErrorCode::ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
        SanitizeError::TooDeep(_)
        | SanitizeError::TooComplex(_)
        | SanitizeError::TokenTooLong(_)
        | SanitizeError::RendersTooLarge { .. }
        | SanitizeError::TooManyReferences { .. } => PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
    };
    ereport!(ERROR, code, error.to_string());
}
