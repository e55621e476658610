-- Adding one socket to the indexes, and removing one socket or every
-- socket of a node from them; shared by join, register, detach, reap,
-- clear_node and prune_node. A user's first socket starts their presence
-- (or ends the offline grace); their last starts the offline grace.
--
-- `k` names the five keys a socket is indexed under (cluster::Keys::socket):
-- node (its node's sockets), user (its user's sockets), users, presence,
-- due (the offline grace's due set).

-- Adds the socket `sid` of `node`; `n` is how many sockets its user had
-- before (read by the caller). Returns 1 when the user came online.
local function add_socket(k, node, sid, user, role, entry, now, n)
  redis.call('HSET', k.node, sid, entry)
  redis.call('HSET', k.user, sid .. '@' .. node, role)
  if n > 0 then return 0 end
  -- The user's first socket: a later one finds the user listed already.
  redis.call('SADD', k.users, user)
  -- A user in their offline grace is still online (a page reload): only
  -- the grace ends. A user with no socket and no grace running is not
  -- online (every last socket's removal starts a grace, and the claim
  -- that ends it marks the user offline), so the status need not be read.
  if redis.call('ZREM', k.due, user) == 1 then return 0 end
  redis.call('HSET', k.presence, 'status', 'online', 'since', now, 'role', role)
  redis.call('PERSIST', k.presence)
  return 1
end

-- Removes the socket `sid` of `node`, of `user` in `role`.
local function remove_socket(k, node, sid, user, role, now, grace)
  redis.call('HDEL', k.node, sid)
  if redis.call('HDEL', k.user, sid .. '@' .. node) == 1 and redis.call('HLEN', k.user) == 0 then
    redis.call('SREM', k.users, user)
    redis.call('HSET', k.presence, 'left', now, 'role', role)
    redis.call('ZADD', k.due, now + grace, user)
  end
end

-- The indexes of the sockets of a whole node, whose users the script
-- reads from the node's entries: KEYS[1] users, KEYS[2] the offline due
-- set, and the user sockets and presence families in ARGV[1..4].
local function node_indexes()
  return {
    users = KEYS[1],
    due = KEYS[2],
    user = {ARGV[1], ARGV[2]},
    presence = {ARGV[3], ARGV[4]},
  }
end

-- Removes the socket `sid` of `node`, whose entry (in `node_key`) is `e`.
local function remove_entry(ix, node_key, node, sid, e, now, grace)
  remove_socket({
    node = node_key,
    user = key(ix.user, e.u),
    users = ix.users,
    presence = key(ix.presence, e.u),
    due = ix.due,
  }, node, sid, e.u, e.r or '', now, grace)
end

local function remove_node(ix, node_key, node, now, grace)
  local entries = redis.call('HGETALL', node_key)
  for i = 1, #entries, 2 do
    remove_entry(ix, node_key, node, entries[i], cjson.decode(entries[i + 1]), now, grace)
  end
  redis.call('DEL', node_key)
  return #entries / 2
end
