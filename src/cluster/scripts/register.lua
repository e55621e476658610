-- Adds one socket to every index when join.lua could not (Redis was
-- unreachable at its connect) and when a node rewrites its sockets after
-- rejoining; returns the user's socket count, 1 when the user just came
-- online, and 1 when the socket's session has expired (read in the same
-- step: an expiry recorded after it finds the socket in the indexes, one
-- recorded before is seen here).
-- KEYS: the five keys of cluster::Keys::socket, then the expired sessions.
-- ARGV: node, sid, user, role, entry (JSON), now, session.
local k = {node = KEYS[1], user = KEYS[2], users = KEYS[3], presence = KEYS[4], due = KEYS[5]}
local node, sid, user, role, entry, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local n = redis.call('HLEN', k.user)
local online = 0
-- Listed already (Redis kept it while this node was away): nothing to add.
if redis.call('HEXISTS', k.user, sid .. '@' .. node) == 0 then
  online = add_socket(k, node, sid, user, role, entry, now, n)
  n = n + 1
end
local expired = 0
if redis.call('ZSCORE', KEYS[6], ARGV[7]) then expired = 1 end
return {n, online, expired}
