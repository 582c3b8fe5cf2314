-- Account events: revoked sessions and changed users reach their sockets.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- A session that ends before its time (logout, a DBA expiring or deleting
-- it, its account deleted): every proxy forgets it and closes its sockets.
CREATE OR REPLACE FUNCTION veritable.session_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.events (room, kind, payload)
    VALUES ('user:' || OLD.user_id, 'session.revoked', jsonb_build_object('session_id', OLD.id, 'user_id', OLD.user_id));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER sessions_revoked AFTER UPDATE OF revoked_at, expires_at ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now()
                       AND (NEW.revoked_at IS NOT NULL OR NEW.expires_at <= now()))
    EXECUTE FUNCTION veritable.session_revoked();

CREATE OR REPLACE TRIGGER sessions_deleted AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
    EXECUTE FUNCTION veritable.session_revoked();

CREATE OR REPLACE FUNCTION veritable.user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.events (room, kind, payload)
    VALUES ('user:' || NEW.id, 'user.updated', jsonb_build_object('user_id', NEW.id, 'role', NEW.role, 'is_deleted', NEW.is_deleted));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER users_changed AFTER UPDATE OF role, is_deleted, username ON users
    FOR EACH ROW WHEN ((OLD.role, OLD.is_deleted, OLD.username) IS DISTINCT FROM (NEW.role, NEW.is_deleted, NEW.username))
    EXECUTE FUNCTION veritable.user_changed();
