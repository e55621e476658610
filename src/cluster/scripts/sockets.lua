-- Removing one socket, or every socket of a node, from every index;
-- shared by detach, reap, clear_node and prune_node. When it was the
-- user's last socket, the offline grace starts.
--
-- `k` names the six keys a socket is indexed under (cluster::Keys::socket):
-- node, user, session (their sockets), users, presence, due.

local function remove_socket(k, node, sid, user, now, grace)
  local field = sid .. '@' .. node
  local role = redis.call('HGET', k.user, field)
  redis.call('HDEL', k.node, sid)
  redis.call('HDEL', k.user, field)
  redis.call('HDEL', k.session, field)
  if role and redis.call('HLEN', k.user) == 0 then
    redis.call('SREM', k.users, user)
    redis.call('HSET', k.presence, 'left', now, 'role', role)
    redis.call('ZADD', k.due, now + grace, user)
  end
end

-- The indexes of the sockets of a whole node, whose users and sessions
-- the script reads from the node's entries: KEYS[1] users, KEYS[2] the
-- offline due set, and the user sockets, session sockets and presence
-- families in ARGV[1..6].
local function node_indexes()
  return {
    users = KEYS[1],
    due = KEYS[2],
    user = {ARGV[1], ARGV[2]},
    session = {ARGV[3], ARGV[4]},
    presence = {ARGV[5], ARGV[6]},
  }
end

-- Removes the socket `sid` of `node`, whose entry (in `node_key`) is `e`.
local function remove_entry(ix, node_key, node, sid, e, now, grace)
  remove_socket({
    node = node_key,
    user = key(ix.user, e.u),
    session = key(ix.session, e.s),
    users = ix.users,
    presence = key(ix.presence, e.u),
    due = ix.due,
  }, node, sid, e.u, now, grace)
end

local function remove_node(ix, node_key, node, now, grace)
  local entries = redis.call('HGETALL', node_key)
  for i = 1, #entries, 2 do
    remove_entry(ix, node_key, node, entries[i], cjson.decode(entries[i + 1]), now, grace)
  end
  redis.call('DEL', node_key)
  return #entries / 2
end
