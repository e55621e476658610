-- Records activity of a session, creating its clock when `create` is 1;
-- 0 when the session has expired, -1 when unknown and not created, else 1.
-- KEYS: expired, the session's clock, clock due.
-- ARGV: session, user, role, now, idle, warn, create.
local expired, ck, due = KEYS[1], KEYS[2], KEYS[3]
local s, user, role, now, idle, warn, create = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('ZSCORE', expired, s) then return 0 end
if redis.call('EXISTS', ck) == 1 then
  local last = tonumber(redis.call('HGET', ck, 'last'))
  if now > last then
    redis.call('HSET', ck, 'last', now, 'warned', 0)
    local i = tonumber(redis.call('HGET', ck, 'idle'))
    local w = tonumber(redis.call('HGET', ck, 'warn'))
    redis.call('ZADD', due, now + i - w, s)
  end
  return 1
end
if create ~= '1' then return -1 end
redis.call('HSET', ck, 'user', user, 'role', role, 'last', now, 'warned', 0, 'idle', idle, 'warn', warn)
redis.call('ZADD', due, now + idle - warn, s)
return 1
