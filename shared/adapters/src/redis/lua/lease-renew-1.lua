--[[
  Extends a pass lease, only if the caller still holds it.

  KEYS[1] lease key of the gid
  ARGV[1] the holder's token
  ARGV[2] new time to live, milliseconds

  Returns 1 when extended, 0 when the lease is someone else's or gone.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
