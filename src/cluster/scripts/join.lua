-- A connect, in one step: takes one of the user's places under the socket
-- cap, starts or touches the session's idle clock, and adds the socket to
-- every index, starting the user's presence if it is their first. The
-- place under the cap is the socket's own entry in its user's sockets from
-- here on: a connect that then fails removes it (detach.lua), as does the
-- reaping of a node that died mid-connect. Checking and taking in one
-- script is what keeps connects arriving together on every node from all
-- passing the cap.
-- Returns {-1} when the user has `cap` sockets already, {-2} when the
-- session has expired (nothing changes in either case), else the user's
-- sockets (this one included) and 1 when the user came online.
-- KEYS: the five keys of cluster::Keys::socket (node, user sockets, users,
-- presence, offline due), then expired, the session's clock, clock due.
-- ARGV: node, sid, user, role, entry (JSON), now, session, cap, idle, warn.
local k = {node = KEYS[1], user = KEYS[2], users = KEYS[3], presence = KEYS[4], due = KEYS[5]}
local node, sid, user, role, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, session, cap = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
local n = redis.call('HLEN', k.user)
if n >= cap then return {-1} end
if touch_clock(KEYS[6], KEYS[7], KEYS[8], session, user, role, now,
    tonumber(ARGV[9]), tonumber(ARGV[10]), true) == 0 then
  return {-2}
end
return {n + 1, add_socket(k, node, sid, user, role, entry, now, n)}
