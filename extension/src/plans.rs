//! Prepared SPI plans kept for the life of the backend, so hot functions
//! parse and plan their queries once, not once per call.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use pgrx::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult};

thread_local! {
    // A PostgreSQL backend is one process running one statement at a time on
    // one thread: a RefCell is all the synchronization this needs. Kept plans
    // are revalidated by PostgreSQL's plan cache after DDL.
    static PLANS: RefCell<HashMap<&'static str, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Runs `f` with the kept plan for `sql`, preparing it on first use.
pub fn with_plan<R>(
    client: &SpiClient<'_>,
    sql: &'static str,
    args: &[PgOid],
    f: impl FnOnce(&OwnedPreparedStatement) -> SpiResult<R>,
) -> SpiResult<R> {
    PLANS.with(|plans| {
        let mut plans = plans.borrow_mut();
        let plan = match plans.entry(sql) {
            Entry::Occupied(kept) => kept.into_mut(),
            Entry::Vacant(slot) => slot.insert(client.prepare(sql, args)?.keep()),
        };
        f(plan)
    })
}
