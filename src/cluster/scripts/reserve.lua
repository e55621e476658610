-- Takes one of a user's places under the socket cap for a socket whose
-- connect is under way; 1 when the user's sockets and the places still
-- held were fewer than `cap`, else 0 (and nothing changes). Checking and
-- taking in one script is what keeps connects arriving together on every
-- node from all passing. A place goes when its socket is attached
-- (attach.lua), when the connect fails (ZREM), or when it lapses: a node
-- that died mid-connect holds none for longer than `lapse`. Lapsed places
-- are swept only when they would make the count reach the cap: below it
-- they change nothing, and the sweep is a command on every connect.
-- KEYS: the user's sockets, the user's places.
-- ARGV: sid@node, now, lapse (ms), cap.
local uk, rk = KEYS[1], KEYS[2]
local member, now, lapse, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local sockets = redis.call('HLEN', uk)
if sockets + redis.call('ZCARD', rk) >= cap then
  if sockets >= cap or redis.call('ZREMRANGEBYSCORE', rk, '-inf', now) == 0 or
      sockets + redis.call('ZCARD', rk) >= cap then
    return 0
  end
end
redis.call('ZADD', rk, now + lapse, member)
-- The key goes with its last place, even if nothing else removes it.
redis.call('PEXPIRE', rk, lapse)
return 1
