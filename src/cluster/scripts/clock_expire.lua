-- Ends a session now; 1 when it was not already expired.
-- KEYS: the session's clock, clock due, expired.
-- ARGV: session, now.
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('ZADD', KEYS[3], 'NX', tonumber(ARGV[2]), ARGV[1])
