-- Removes one socket from every index.
-- KEYS: the six keys of cluster::Keys::socket.
-- ARGV: node, sid, user, now, grace.
remove_socket({
  node = KEYS[1],
  user = KEYS[2],
  session = KEYS[3],
  users = KEYS[4],
  presence = KEYS[5],
  due = KEYS[6],
}, ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
return 1
