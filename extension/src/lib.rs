//! The veritable PostgreSQL extension. Every SQL function lives in schema
//! `veritable` and is a thin wrapper over plain Rust (see STYLE.md).

use pgrx::prelude::*;

::pgrx::pg_module_magic!(name, version);

/// The extension's version, as built: `SELECT veritable.version()`.
#[pg_extern(immutable, strict, parallel_safe)]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn version_is_the_crate_version() {
        assert_eq!(crate::version(), env!("CARGO_PKG_VERSION"));
    }

    #[pg_test]
    fn version_is_callable_from_sql_in_schema_veritable() {
        let v = Spi::get_one::<String>("SELECT veritable.version()").expect("SPI works");
        assert_eq!(v.as_deref(), Some(env!("CARGO_PKG_VERSION")));
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
