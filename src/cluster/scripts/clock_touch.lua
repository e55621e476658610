-- Records activity of a session, creating its clock when `create` is 1;
-- 0 when the session has expired, -1 when unknown and not created, else 1
-- (touch_clock in clock.lua).
-- KEYS: expired, the session's clock, clock due.
-- ARGV: session, user, role, now, idle, warn, create.
return touch_clock(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3],
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == '1')
