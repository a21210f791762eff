--[[
  The Redis barrier around an integer adjustment (reference §7, DTM's RedisCheckAdjustAmount), atomically.

  KEYS[1] the integer to adjust (a balance)
  KEYS[2] this op's barrier key        <gid>-<branch_id>-<op>-<barrier_id>
  KEYS[3] the origin op's barrier key  <gid>-<branch_id>-<origin op>-<barrier_id> (unused without an origin)
  ARGV[1] the amount to add (negative to take)
  ARGV[2] the origin op (try for cancel, action for compensate), '' for forward ops
  ARGV[3] expiry of barrier keys, seconds

  Returns
    'DUPLICATE'          this op ran already: nothing changes
    'HANGING'            a compensation already marked this op as rolled back: nothing changes
    'NULL_COMPENSATION'  a compensation whose origin never ran: marks both, nothing adjusted
    'FAILURE'            KEYS[1] is missing, or the result would be negative: nothing changes
    'OK'                 adjusted, op marked

  Unlike DTM's script, which checks the balance first, a repeat is recognised before the balance: a retried action
  whose first attempt succeeded must not answer FAILURE just because the money has moved since.
]]
local e1 = redis.call('GET', KEYS[2])
if e1 ~= false then
  if e1 == 'rollback' then
    return 'HANGING'
  end
  return 'DUPLICATE'
end

if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) == false then
  redis.call('SET', KEYS[2], 'op', 'EX', ARGV[3])
  redis.call('SET', KEYS[3], 'rollback', 'EX', ARGV[3])
  return 'NULL_COMPENSATION'
end

local v = redis.call('GET', KEYS[1])
if v == false or tonumber(v) + tonumber(ARGV[1]) < 0 then
  return 'FAILURE'
end

redis.call('SET', KEYS[2], 'op', 'EX', ARGV[3])
redis.call('INCRBY', KEYS[1], ARGV[1])
return 'OK'
