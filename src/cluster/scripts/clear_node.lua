-- Removes every socket of one node from every index (it leaves the
-- cluster); returns how many there were.
-- KEYS: users, offline due, the node's sockets.
-- ARGV: the three families of node_indexes, node, now, grace.
return remove_node(node_indexes(), KEYS[3], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9]))
