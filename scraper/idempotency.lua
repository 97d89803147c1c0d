-- Idempotency records of the scraper (scraper/idempotency.py). Leases use Redis TIME, never a caller's clock.
-- KEYS[1] record hash: state (started|unknown|done), owner, lease_until_ms, first_claim_ms, result_key
-- ARGV: op, owner, lease_ms, ttl_s, result_key
local key = KEYS[1]
local op, owner = ARGV[1], ARGV[2]
local lease_ms, ttl_s = tonumber(ARGV[3]), tonumber(ARGV[4])
local result_key = ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local state = redis.call('HGET', key, 'state')
if op == 'claim' then
  if not state then
    redis.call('HSET', key, 'state', 'started', 'owner', owner, 'lease_until_ms', now + lease_ms,
      'first_claim_ms', now)
    redis.call('EXPIRE', key, ttl_s)
    return {'claimed', tostring(now)}
  end
  if state == 'done' then return {'done', redis.call('HGET', key, 'result_key') or ''} end
  local lease_until = tonumber(redis.call('HGET', key, 'lease_until_ms') or '0')
  if state == 'started' and lease_until > now then return {'busy', tostring(lease_until - now)} end
  -- An earlier attempt stopped without saying how it ended: this caller must verify before acting.
  redis.call('HSET', key, 'state', 'started', 'owner', owner, 'lease_until_ms', now + lease_ms)
  return {'verify', redis.call('HGET', key, 'first_claim_ms') or '0'}
elseif op == 'lookup' then
  if state == 'done' then return {'done', redis.call('HGET', key, 'result_key') or ''} end
  return {state or 'none', ''}
elseif op == 'done' then
  redis.call('HSET', key, 'state', 'done', 'owner', owner, 'result_key', result_key)
  redis.call('EXPIRE', key, ttl_s)
  return {'done', result_key}
elseif op == 'release' then
  if state ~= 'done' and redis.call('HGET', key, 'owner') == owner then redis.call('DEL', key) end
  return {'released', ''}
elseif op == 'unknown' then
  if state ~= 'done' and redis.call('HGET', key, 'owner') == owner then
    redis.call('HSET', key, 'state', 'unknown', 'lease_until_ms', 0)
  end
  return {'unknown', ''}
end
return redis.error_reply('unknown idempotency op ' .. tostring(op))
