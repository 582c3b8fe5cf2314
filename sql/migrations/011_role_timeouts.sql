-- Timeouts for the role that migrates, in this database only: run
-- `veritable-proxy migrate` as the role the proxy connects as. Set per role
-- (not per connection) so that they hold through pgbouncer too.
--   statement_timeout                    10 s: below the proxy's 30 s request timeout
--   lock_timeout                          5 s: a write waiting longer is answered 503
--   idle_in_transaction_session_timeout  30 s: a stuck client cannot hold locks
-- The seed, migrations and reconcile runs lift them with SET LOCAL.

SET LOCAL search_path = public;

DO $$
BEGIN
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET statement_timeout = %L', current_user, current_database(), '10s');
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET lock_timeout = %L', current_user, current_database(), '5s');
    EXECUTE format('ALTER ROLE %I IN DATABASE %I SET idle_in_transaction_session_timeout = %L',
                   current_user, current_database(), '30s');
END $$;
