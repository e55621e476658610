-- Removes every node whose last beat is older than `dead_before`, and
-- its sockets from every index; returns the nodes removed.
-- KEYS: users, offline due, nodes.
-- ARGV: the two families of node_indexes, the node sockets family,
-- dead_before, now, grace.
local ix = node_indexes()
local nodes, node_sockets = KEYS[3], {ARGV[5], ARGV[6]}
local dead_before, now, grace = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local reaped = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', '(' .. dead_before)) do
  if redis.call('ZREM', nodes, node) == 1 then
    remove_node(ix, key(node_sockets, node), node, now, grace)
    table.insert(reaped, node)
  end
end
return reaped
