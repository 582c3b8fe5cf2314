//! `veritable-proxy migrate`: in order, once, atomic per migration, checked.

use veritable_proxy::migrate::{self, MIGRATIONS, MigrateError, Migration};
use veritable_tests::{FreshDb, connect};

#[tokio::test]
async fn migrate_applies_everything_once_and_a_second_run_is_a_no_op() {
    let db = FreshDb::create("migrate_twice").await;
    let mut client = connect(&db.url).await;

    let first = migrate::apply(&mut client, MIGRATIONS).await.expect("first migrate");
    assert_eq!(first.applied.len(), MIGRATIONS.len());
    assert_eq!(first.already, 0);

    let second = migrate::apply(&mut client, MIGRATIONS).await.expect("second migrate");
    assert!(second.applied.is_empty(), "nothing to apply: {:?}", second.applied);
    assert_eq!(second.already, MIGRATIONS.len());

    let recorded: i64 = client.query_one("SELECT count(*) FROM schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(recorded, MIGRATIONS.len() as i64);
    // The extension was created by the database owner, not a superuser (it is trusted).
    let version: String = client.query_one("SELECT veritable.version()", &[]).await.unwrap().get(0);
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let superuser: bool = client.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).await.unwrap().get(0);
    assert!(!superuser, "the test role is not a superuser");
    db.drop_db().await;
}

#[tokio::test]
async fn concurrent_migrators_apply_each_migration_exactly_once() {
    let db = FreshDb::create("migrate_concurrent").await;
    let runs = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move {
            let mut client = connect(&url).await;
            migrate::apply(&mut client, MIGRATIONS).await
        })
    });
    let mut applied = 0;
    for run in runs.collect::<Vec<_>>() {
        let report = run.await.expect("task").expect("every migrator succeeds");
        applied += report.applied.len();
    }
    assert_eq!(applied, MIGRATIONS.len(), "each migration applied by exactly one migrator");
    db.drop_db().await;
}

const CREATE_A: Migration = Migration { version: 1, name: "a", sql: "CREATE TABLE a (id int PRIMARY KEY);" };
const BROKEN_B: Migration = Migration {
    version: 2,
    name: "b",
    sql: "CREATE TABLE b (id int PRIMARY KEY); INSERT INTO a VALUES (1); SELECT 1 / 0;",
};
const FIXED_B: Migration = Migration { version: 2, name: "b", sql: "CREATE TABLE b (id int PRIMARY KEY);" };

#[tokio::test]
async fn a_failed_migration_leaves_the_database_as_it_was() {
    let db = FreshDb::create("migrate_failure").await;
    let mut client = connect(&db.url).await;

    let error = migrate::apply(&mut client, &[CREATE_A, BROKEN_B]).await.expect_err("division by zero");
    assert!(matches!(&error, MigrateError::Failed { file, .. } if file == "002_b.sql"), "{error}");
    assert!(error.to_string().contains("rolled back"), "{error}");

    let b_exists: bool = client.query_one("SELECT to_regclass('b') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(!b_exists, "the failed migration's table is gone");
    let a_rows: i64 = client.query_one("SELECT count(*) FROM a", &[]).await.unwrap().get(0);
    assert_eq!(a_rows, 0, "the failed migration's insert is gone");
    let versions: Vec<i32> =
        client.query("SELECT version FROM schema_migrations ORDER BY 1", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, vec![1]);

    let report = migrate::apply(&mut client, &[CREATE_A, FIXED_B]).await.expect("the fixed migration applies");
    assert_eq!(report.applied, vec!["002_b.sql".to_owned()]);
    db.drop_db().await;
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let db = FreshDb::create("migrate_edited").await;
    let mut client = connect(&db.url).await;
    migrate::apply(&mut client, &[CREATE_A]).await.expect("apply");
    let edited = Migration { version: 1, name: "a", sql: "CREATE TABLE a (id bigint PRIMARY KEY);" };
    let error = migrate::apply(&mut client, &[edited]).await.expect_err("checksum differs");
    assert!(matches!(&error, MigrateError::Changed { file } if file == "001_a.sql"), "{error}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let db = FreshDb::create("migrate_newer").await;
    let mut client = connect(&db.url).await;
    migrate::apply(&mut client, &[CREATE_A, FIXED_B]).await.expect("apply");
    let error = migrate::apply(&mut client, &[CREATE_A]).await.expect_err("version 2 unknown");
    assert!(matches!(error, MigrateError::Unknown { version: 2 }), "{error}");
    db.drop_db().await;
}

#[tokio::test]
async fn the_sql_files_apply_with_plain_sql_as_a_dba_would() {
    // What `psql -1 -f sql/NNN.sql` does: each file's text in one transaction.
    let db = FreshDb::create("migrate_by_hand").await;
    let mut client = connect(&db.url).await;
    for migration in MIGRATIONS {
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(migration.sql).await.unwrap_or_else(|e| panic!("{}: {e}", migration.file_name()));
        tx.commit().await.unwrap();
    }
    let tables: i64 = client
        .query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(tables >= 14, "all tables exist: {tables}");
    db.drop_db().await;
}
