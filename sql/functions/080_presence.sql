-- Presence: who is in which room, per proxy, with a TTL.
--
-- The current definition of each function and trigger here: `migrate` re-applies
-- this file whenever its text changes (sql/functions/README.md).

SET LOCAL search_path = public;

-- Makes `p_proxy`'s rows exactly the (room, user) pairs given, refreshed for
-- `p_ttl`; removes every other proxy's expired rows; sends one
-- `veritable_presence` notification per room whose members changed (in this
-- call's own transaction, never a writer's) and returns those rooms.
CREATE OR REPLACE FUNCTION veritable.presence_sync(p_proxy text, p_rooms text[], p_users bigint[], p_ttl interval)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    changed text;
BEGIN
    FOR changed IN
        WITH wanted AS (SELECT DISTINCT room, user_id FROM unnest(p_rooms, p_users) AS w(room, user_id)),
        left_room AS (
            DELETE FROM public.presence p
             WHERE p.proxy = p_proxy
               AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.room = p.room AND w.user_id = p.user_id)
            RETURNING p.room),
        expired AS (
            DELETE FROM public.presence p WHERE p.proxy <> p_proxy AND p.expires_at < now() RETURNING p.room),
        joined AS (
            INSERT INTO public.presence AS p (room, user_id, proxy, expires_at)
            SELECT room, user_id, p_proxy, now() + p_ttl FROM wanted
            ON CONFLICT (room, user_id, proxy) DO UPDATE SET expires_at = EXCLUDED.expires_at
            RETURNING p.room, (p.xmax = 0) AS inserted)
        SELECT DISTINCT room FROM (
            SELECT room FROM left_room UNION ALL SELECT room FROM expired
            UNION ALL SELECT room FROM joined WHERE inserted) r
    LOOP
        PERFORM pg_notify('veritable_presence', changed);
        RETURN NEXT changed;
    END LOOP;
END $$;

-- Who is in a room now: [{"id", "username"}] by name.
CREATE OR REPLACE FUNCTION veritable.presence_of(p_room text) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object('id', u.id, 'username', u.username) ORDER BY u.username), '[]')
      FROM (SELECT DISTINCT user_id FROM public.presence WHERE room = p_room AND expires_at > now()) p
      JOIN public.users u ON u.id = p.user_id;
$$;
