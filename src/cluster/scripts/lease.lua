-- Claims under a lease, for events handed out once cluster-wide (session
-- warnings and expiries, offline presence). A claimed event is a member
-- of a lease set scored by when its lease runs out: the claimer acts on
-- it and removes it (cluster::Leases); a claimer that dies leaves the
-- lease to run out, and the next claim hands the event out again.

-- Leases `m` to this claim.
local function claim(leased, now, lease, m, out)
  redis.call('ZADD', leased, now + lease, m)
  table.insert(out, m)
end

-- Hands out again (at most 100) the events whose lease ran out by `now`;
-- one that `still_due(m)` says is no longer due is dropped instead.
local function reclaim(leased, now, lease, out, still_due)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', leased, '-inf', now, 'LIMIT', 0, 100)) do
    if still_due(m) then
      claim(leased, now, lease, m, out)
    else
      redis.call('ZREM', leased, m)
    end
  end
end
