-- Adds one socket to every index; returns the user's socket count, 1
-- when the user just came online, and 1 when the socket's session has
-- expired (read in the same step: an expiry recorded after it finds the
-- socket in the indexes, one recorded before is seen here).
-- The place its connect took under the cap (reserve.lua) is now the
-- socket's own entry, and is given back.
-- KEYS: the six keys of cluster::Keys::socket (node, user, session
-- sockets, users, presence, offline due), then the user's places and the
-- expired sessions.
-- ARGV: node, sid, user, role, entry (JSON), now, session.
local node, sid, user, role, entry, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local nk, uk, sk, users, pk, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local field = sid .. '@' .. node
redis.call('HSET', nk, sid, entry)
redis.call('HSET', uk, field, role)
redis.call('HSET', sk, field, user)
redis.call('ZREM', KEYS[7], field)
local n = redis.call('HLEN', uk)
local online = 0
if n == 1 then
  -- The user's first socket: a later one finds the user listed already.
  redis.call('SADD', users, user)
  local in_grace = redis.call('ZREM', due, user)
  local status = redis.call('HGET', pk, 'status')
  if not (in_grace == 1 and status == 'online') and status ~= 'online' then
    redis.call('HSET', pk, 'status', 'online', 'since', now, 'role', role)
    redis.call('PERSIST', pk)
    online = 1
  end
end
local expired = 0
if redis.call('ZSCORE', KEYS[8], ARGV[7]) then expired = 1 end
return {n, online, expired}
