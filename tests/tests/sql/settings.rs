//! The cluster runs with the workload's settings file
//! (`docker/postgres/veritable.conf`, which `cargo xtask` and the Docker image
//! apply): the settings that change what the system does, not only how fast.

use veritable_tests::{connect, database_url};

/// After a restart, PostgreSQL reloads the pages its shared buffers held
/// before it (pg_prewarm's autoprewarm), so a restart of a grown database
/// does not refuse posts for minutes while every index page comes back one
/// random read at a time (BENCHMARKS.md, "A restart of a grown database").
#[tokio::test]
async fn a_restart_reloads_the_buffers_it_had() {
    let client = connect(&database_url()).await;
    // pg_settings, not current_setting: the setting of a library that is not
    // loaded is a placeholder, which current_setting reads back like a real
    // one and pg_settings does not list; and only a role allowed to read all
    // settings may read `shared_preload_libraries` itself.
    let rows = client
        .query(
            "SELECT name, vartype, context, setting FROM pg_settings
              WHERE name IN ('pg_prewarm.autoprewarm', 'pg_prewarm.autoprewarm_interval') ORDER BY name",
            &[],
        )
        .await
        .expect("pg_settings is readable");
    let settings: Vec<(String, String, String, String)> =
        rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))).collect();
    let expected = [
        ("pg_prewarm.autoprewarm", "bool", "postmaster", "on"),
        ("pg_prewarm.autoprewarm_interval", "integer", "sighup", "300"),
    ];
    assert_eq!(
        settings.iter().map(|(n, t, c, s)| (n.as_str(), t.as_str(), c.as_str(), s.as_str())).collect::<Vec<_>>(),
        expected,
        "pg_prewarm is preloaded, autoprewarm runs and saves its list every 300 s: is the cluster started with veritable.conf?"
    );
}
