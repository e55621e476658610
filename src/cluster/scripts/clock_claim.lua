-- Claims every session warning and expiry due at `now` (and events whose
-- lease ran out); returns them as JSON members of the lease set,
-- `[kind, session, user, time remaining, now]`.
-- KEYS: clock leased, clock due, expired.
-- ARGV: session clock family, now, lease.
local leased, due, expired = KEYS[1], KEYS[2], KEYS[3]
local clock = {ARGV[1], ARGV[2]}
local now, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
reclaim(leased, now, lease, out, function() return true end)
for _, s in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, 200)) do
  local ck = key(clock, s)
  local f = redis.call('HMGET', ck, 'last', 'idle', 'warn', 'warned', 'user')
  if not f[1] then
    redis.call('ZREM', due, s)
  else
    local expire_at = tonumber(f[1]) + tonumber(f[2])
    local warn_at = expire_at - tonumber(f[3])
    if now >= expire_at then
      redis.call('ZREM', due, s)
      redis.call('DEL', ck)
      redis.call('ZADD', expired, now, s)
      claim(leased, now, lease, cjson.encode({'expired', s, f[5], 0, now}), out)
    elseif now >= warn_at and f[4] == '0' then
      redis.call('HSET', ck, 'warned', 1)
      redis.call('ZADD', due, expire_at, s)
      claim(leased, now, lease, cjson.encode({'warning', s, f[5], expire_at - now, now}), out)
    elseif f[4] == '1' then
      redis.call('ZADD', due, expire_at, s)
    else
      redis.call('ZADD', due, warn_at, s)
    end
  end
end
return out
