--[[
  Drops a transaction's stream from Redis once the archive durably holds it, only if the stream still holds
  exactly what was archived; leaves a marker for a while so that a new stream cannot start under its gid. The marker
  is the gid's pass lease, held by 'archived': nobody drives an archived transaction, and the append that starts a
  stream reads the lease key anyway (append-7.lua). Its read-model row goes too: a finished transaction the Redis
  log archives has no expiry of its own (one PEXPIREAT fewer per transaction); it leaves the read model when its
  stream leaves the live log, at the same deadline.

  KEYS[1] stream LIST of the gid
  KEYS[2] snapshot HASH of the gid
  KEYS[3] archive-due ZSET of the gid's partition
  KEYS[4] pass lease of the gid (the marker)
  KEYS[5] read-model HASH of the gid
  ARGV[1] number of events archived
  ARGV[2] gid
  ARGV[3] time to live of the marker, milliseconds

  Returns 1 when dropped, 0 when the stream changed since it was read (nothing dropped; archive it again).
]]
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[5])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('SET', KEYS[4], 'archived', 'PX', ARGV[3])
return 1
