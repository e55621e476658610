-- Removes from every index the sockets of one node not listed to keep;
-- returns how many.
-- KEYS: users, offline due, the node's sockets.
-- ARGV: the two families of node_indexes, node, now, grace, then the
-- socket ids to keep.
local ix, node_key = node_indexes(), KEYS[3]
local node, now, grace = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local keep = {}
for i = 8, #ARGV do keep[ARGV[i]] = true end
local entries = redis.call('HGETALL', node_key)
local pruned = 0
for i = 1, #entries, 2 do
  if not keep[entries[i]] then
    remove_entry(ix, node_key, node, entries[i], cjson.decode(entries[i + 1]), now, grace)
    pruned = pruned + 1
  end
end
return pruned
