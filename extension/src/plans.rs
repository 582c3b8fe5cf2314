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
    // Keyed by the address and length of the 'static SQL text: hashing the
    // whole text on every one of a walk's few hundred queries showed up in
    // profiles (SipHash over ~300 bytes per query).
    static PLANS: RefCell<HashMap<(usize, usize), OwnedPreparedStatement>> = RefCell::new(HashMap::new());
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
        let plan = match plans.entry((sql.as_ptr() as usize, sql.len())) {
            Entry::Occupied(kept) => kept.into_mut(),
            Entry::Vacant(slot) => slot.insert(client.prepare(sql, args)?.keep()),
        };
        f(plan)
    })
}
