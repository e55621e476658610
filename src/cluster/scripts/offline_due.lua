-- Claims the offline changes due at `now`: users whose grace ran out with
-- no socket back are marked offline (since their last socket left), and
-- each change is leased to this claim; returns them as JSON members of
-- the lease set, `[user, role, left]`.
-- KEYS: offline leased, offline due.
-- ARGV: user sockets family, presence family, now, how long an offline
-- presence is kept (s), lease.
local leased, due = KEYS[1], KEYS[2]
local user_sockets, presence = {ARGV[1], ARGV[2]}, {ARGV[3], ARGV[4]}
local now, kept, lease = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local out = {}
-- A user back online since was announced online: the offline is dropped.
reclaim(leased, now, lease, out, function(m)
  return redis.call('HLEN', key(user_sockets, cjson.decode(m)[1])) == 0
end)
for _, user in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, 200)) do
  redis.call('ZREM', due, user)
  if redis.call('HLEN', key(user_sockets, user)) == 0 then
    local pk = key(presence, user)
    local left = tonumber(redis.call('HGET', pk, 'left')) or now
    local role = redis.call('HGET', pk, 'role') or ''
    redis.call('HSET', pk, 'status', 'offline', 'since', left)
    redis.call('EXPIRE', pk, kept)
    claim(leased, now, lease, cjson.encode({user, role, left}), out)
  end
end
return out
