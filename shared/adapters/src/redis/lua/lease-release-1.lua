--[[
  Releases a pass lease, only if the caller still holds it (a lease that lapsed and was taken by
  another driver must not be deleted by the first).

  KEYS[1] lease key of the gid
  ARGV[1] the holder's token

  Returns 1 when released, 0 when it was someone else's or gone.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
