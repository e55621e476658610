-- The key of `id` in a family of keys passed as two arguments, head and
-- tail (cluster::Family), for keys a script only finds as it runs.
local function key(family, id)
  return family[1] .. id .. family[2]
end
