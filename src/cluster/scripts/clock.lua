-- A session's activity on its idle clock, shared by clock_touch and join.
--
-- Kept to one read and one write for a live session, the cost of every
-- client's activity:
-- - A clock that exists is a live session: every expiry deletes the clock
--   in the same step as it records the session expired (clock_expire.lua,
--   clock_claim.lua, the rejoin's record of expired sessions), so the
--   expired set is read only when there is no clock.
-- - Activity does not move the session's deadline in the due set: the
--   deadline can only come later, and the claim that finds it early reads
--   the clock and sets the next one (clock_claim.lua). Only a warned
--   session's deadline is its expiry, later than its next warning: that
--   one moves back now.

-- Records activity of session `s` at `now` on the clock `ck` (creating it
-- when `create`, with the role's `idle` and `warn` lead, in ms); 0 when
-- the session has expired (nothing changes), -1 when it is unknown and
-- not created, else 1. `expired` and `due` are the expired and due sets.
local function touch_clock(expired, ck, due, s, user, role, now, idle, warn, create)
  local f = redis.call('HMGET', ck, 'last', 'warned', 'idle', 'warn')
  if f[1] then
    if now > tonumber(f[1]) then
      redis.call('HSET', ck, 'last', now, 'warned', 0)
      if f[2] == '1' then
        redis.call('ZADD', due, now + tonumber(f[3]) - tonumber(f[4]), s)
      end
    end
    return 1
  end
  if redis.call('ZSCORE', expired, s) then return 0 end
  if not create then return -1 end
  redis.call('HSET', ck, 'user', user, 'role', role, 'last', now, 'warned', 0, 'idle', idle, 'warn', warn)
  redis.call('ZADD', due, now + idle - warn, s)
  return 1
end
