-- Removes every socket of one node from every index (it leaves the
-- cluster); returns how many there were.
-- KEYS: users, offline due, the node's sockets.
-- ARGV: the two families of node_indexes, node, now, grace.
return remove_node(node_indexes(), KEYS[3], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]))
