-- Removes one socket from every index (a disconnect, or a connect that
-- failed after join.lua took its place).
-- KEYS: the five keys of cluster::Keys::socket.
-- ARGV: node, sid, user, role, now, grace.
remove_socket({
  node = KEYS[1],
  user = KEYS[2],
  users = KEYS[3],
  presence = KEYS[4],
  due = KEYS[5],
}, ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
