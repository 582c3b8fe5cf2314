//! `veritable-proxy migrate`: migrations in order, once, atomic per
//! migration, checked; function files re-applied when their text changes.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;
use veritable_proxy::store::migrate::{self, FUNCTIONS, Functions, MIGRATIONS, MigrateError, Migration, SUPERSEDED};
use veritable_tests::{FreshDb, connect, database_url};

#[tokio::test]
async fn migrate_applies_everything_once_and_a_second_run_is_a_no_op() {
    let db = FreshDb::create("migrate_twice").await;
    let mut client = connect(&db.url).await;

    let first = migrate::all(&mut client).await.expect("first migrate");
    assert_eq!(first.applied.len(), MIGRATIONS.len());
    assert_eq!(first.already, 0);
    assert_eq!(first.functions.len(), FUNCTIONS.len(), "every function file applied");

    let second = migrate::all(&mut client).await.expect("second migrate");
    assert!(second.applied.is_empty(), "nothing to apply: {:?}", second.applied);
    assert_eq!(second.already, MIGRATIONS.len());
    assert!(second.functions.is_empty(), "no function file changed: {:?}", second.functions);

    let recorded: i64 = client.query_one("SELECT count(*) FROM schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(recorded, MIGRATIONS.len() as i64);
    // The extension was created by the database owner, not a superuser (it is trusted).
    let version: String = client.query_one("SELECT veritable.version()", &[]).await.unwrap().get(0);
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    let superuser: bool =
        client.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).await.unwrap().get(0);
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
            migrate::all(&mut client).await
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

    let error = migrate::apply(&mut client, &[CREATE_A, BROKEN_B], &[]).await.expect_err("division by zero");
    assert!(matches!(&error, MigrateError::Failed { file, .. } if file == "002_b.sql"), "{error}");
    assert!(error.to_string().contains("rolled back"), "{error}");

    let b_exists: bool = client.query_one("SELECT to_regclass('b') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(!b_exists, "the failed migration's table is gone");
    let a_rows: i64 = client.query_one("SELECT count(*) FROM a", &[]).await.unwrap().get(0);
    assert_eq!(a_rows, 0, "the failed migration's insert is gone");
    let versions: Vec<i32> = client
        .query("SELECT version FROM schema_migrations ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1]);

    let report = migrate::apply(&mut client, &[CREATE_A, FIXED_B], &[]).await.expect("the fixed migration applies");
    assert_eq!(report.applied, vec!["002_b.sql".to_owned()]);
    db.drop_db().await;
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let db = FreshDb::create("migrate_edited").await;
    let mut client = connect(&db.url).await;
    migrate::apply(&mut client, &[CREATE_A], &[]).await.expect("apply");
    let edited = Migration { version: 1, name: "a", sql: "CREATE TABLE a (id bigint PRIMARY KEY);" };
    let error = migrate::apply(&mut client, &[edited], &[]).await.expect_err("checksum differs");
    assert!(matches!(&error, MigrateError::Changed { file } if file == "001_a.sql"), "{error}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let db = FreshDb::create("migrate_newer").await;
    let mut client = connect(&db.url).await;
    migrate::apply(&mut client, &[CREATE_A, FIXED_B], &[]).await.expect("apply");
    let error = migrate::apply(&mut client, &[CREATE_A], &[]).await.expect_err("version 2 unknown");
    assert!(matches!(error, MigrateError::Unknown { version: 2 }), "{error}");
    db.drop_db().await;
}

#[tokio::test]
async fn the_sql_files_apply_with_plain_sql_as_a_dba_would() {
    // What `psql -1 -f FILE` does: each file's text in one transaction,
    // the migrations, then the function files.
    let db = FreshDb::create("migrate_by_hand").await;
    let mut client = connect(&db.url).await;
    let files =
        MIGRATIONS.iter().map(|m| (m.file_name(), m.sql)).chain(FUNCTIONS.iter().map(|f| (f.file_name(), f.sql)));
    for (file, sql) in files {
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(sql).await.unwrap_or_else(|e| panic!("{file}: {e}"));
        tx.commit().await.unwrap();
    }
    let tables: i64 =
        client.query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[]).await.unwrap().get(0);
    assert!(tables >= 14, "all tables exist: {tables}");
    db.drop_db().await;
}

/// Every function (outside the extension) and trigger of the database, by
/// name, with its definition as PostgreSQL prints it.
async fn definitions(client: &impl GenericClient) -> BTreeMap<String, String> {
    let rows = client
        .query(
            "SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' ELSE 'function ' END || n.nspname || '.' || p.proname,
                    pg_get_functiondef(p.oid)
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname IN ('veritable', 'public')
                AND NOT EXISTS (SELECT 1 FROM pg_depend d
                                 WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
             UNION ALL
             SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid)
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT t.tgisinternal AND n.nspname = 'public'",
            &[],
        )
        .await
        .expect("catalog query");
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// The database the suites share (on a developer's machine, one migrated by
/// every earlier build) holds exactly the functions and triggers the files
/// define, as the files define them: re-applying every file inside a
/// transaction (rolled back) changes no definition.
#[tokio::test]
async fn the_database_definitions_equal_the_function_files() {
    let mut client = connect(&database_url()).await;
    let tx = client.transaction().await.expect("begin");
    // As the files set it, so definitions print alike before and after.
    tx.batch_execute("SET LOCAL search_path = public").await.expect("search_path");
    let before = definitions(&tx).await;
    let mut names: Vec<String> = FUNCTIONS.iter().flat_map(|f| migrate::definitions(f.sql)).collect();
    names.sort();
    let in_db: Vec<String> = before.keys().cloned().collect();
    assert_eq!(in_db, names, "the database's functions and triggers are the files' ones");
    for file in FUNCTIONS {
        tx.batch_execute(file.sql).await.unwrap_or_else(|e| panic!("{}: {e}", file.file_name()));
    }
    let after = definitions(&tx).await;
    for (name, definition) in &before {
        assert_eq!(Some(definition), after.get(name), "{name} differs from its file");
    }
    tx.rollback().await.expect("rollback");
}

/// A database migrated before the functions moved into sql/functions has
/// recorded the old checksums: it migrates forward, the checksums are
/// replaced, and every function file is applied.
#[tokio::test]
async fn a_database_with_superseded_checksums_migrates_forward() {
    let (db, mut client) = FreshDb::migrated("migrate_superseded").await;
    for (version, sum) in SUPERSEDED {
        let old = hex::decode(sum).expect("hex");
        client
            .execute("UPDATE schema_migrations SET checksum = $2 WHERE version = $1", &[version, &old])
            .await
            .unwrap();
    }
    client.execute("DELETE FROM schema_functions", &[]).await.unwrap();
    let report = migrate::all(&mut client).await.expect("superseded checksums are accepted");
    let mut versions: Vec<i32> = SUPERSEDED.iter().map(|(v, _)| *v).collect();
    versions.dedup();
    let rechecked: Vec<String> =
        versions.iter().map(|v| MIGRATIONS[usize::try_from(*v - 1).unwrap()].file_name()).collect();
    assert_eq!(report.rechecked, rechecked);
    assert!(report.applied.is_empty());
    assert_eq!(report.functions.len(), FUNCTIONS.len());
    let again = migrate::all(&mut client).await.expect("second run");
    assert!(again.rechecked.is_empty() && again.functions.is_empty(), "{again:?}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_changed_function_file_is_applied_again_and_only_it() {
    let (db, mut client) = FreshDb::migrated("migrate_functions").await;
    client.execute("UPDATE schema_functions SET checksum = '\\x00' WHERE name = '020_replies'", &[]).await.unwrap();
    // What a changed file would bring: here, the definition it restores.
    client.batch_execute("CREATE OR REPLACE FUNCTION veritable.replies_inserted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$").await.unwrap();
    let report = migrate::all(&mut client).await.expect("migrate");
    assert_eq!(report.functions, vec!["020_replies.sql".to_owned()]);
    let body: String =
        client.query_one("SELECT prosrc FROM pg_proc WHERE proname = 'replies_inserted'", &[]).await.unwrap().get(0);
    assert!(body.contains("new_replies"), "the file's definition is back: {body}");
    db.drop_db().await;
}

#[tokio::test]
async fn a_failed_function_file_rolls_back_every_function_file() {
    let db = FreshDb::create("migrate_functions_failure").await;
    let mut client = connect(&db.url).await;
    let good = Functions {
        name: "010_good",
        sql: "CREATE OR REPLACE FUNCTION public.good() RETURNS int LANGUAGE sql AS 'SELECT 1';",
    };
    let bad = Functions { name: "020_bad", sql: "SELECT 1 / 0;" };
    let error = migrate::apply_functions(&mut client, &[good, bad]).await.expect_err("division by zero");
    assert!(matches!(&error, MigrateError::FunctionsFailed { file, .. } if file == "020_bad.sql"), "{error}");
    let exists: bool =
        client.query_one("SELECT to_regprocedure('public.good()') IS NOT NULL", &[]).await.unwrap().get(0);
    assert!(!exists, "the earlier file of the same run is rolled back");
    db.drop_db().await;
}
