-- Circuit breaker transitions for the scraper (scraper/breaker.py). One script, so every transition is atomic.
-- KEYS[1] open key: exists only while OPEN (value = reason, PX = remaining open time). The gate reads only it.
-- KEYS[2] state hash: state (closed|open|half_open), failures, open_until_ms, reason, opens.
-- KEYS[3] probe key: held by the one half-open probe (value = its token, PX = probe lease).
-- ARGV: op, now_ms (caller's injectable clock), threshold, open_ms, reason, probe_ttl_ms, token
local open_key, state_key, probe_key = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local open_ms = tonumber(ARGV[4])
local reason = ARGV[5]
local probe_ttl = tonumber(ARGV[6])
local token = ARGV[7]

-- OPEN ends when the caller's clock passes open_until_ms or the open key has expired (Redis time),
-- whichever comes first; the transition deletes the open key so the gate resumes at the same moment.
local function current()
  local st = redis.call('HGET', state_key, 'state') or 'closed'
  if st == 'open' then
    local until_ms = tonumber(redis.call('HGET', state_key, 'open_until_ms') or '0')
    if now >= until_ms or redis.call('EXISTS', open_key) == 0 then
      redis.call('DEL', open_key)
      redis.call('HSET', state_key, 'state', 'half_open')
      st = 'half_open'
    end
  end
  return st
end

local function remaining_open()
  local until_ms = tonumber(redis.call('HGET', state_key, 'open_until_ms') or '0')
  local left = until_ms - now
  local pttl = redis.call('PTTL', open_key)
  if pttl >= 0 and pttl < left then left = pttl end
  if left < 0 then left = 0 end
  return left
end

local function open()
  redis.call('HSET', state_key, 'state', 'open', 'open_until_ms', now + open_ms, 'failures', 0, 'reason', reason)
  redis.call('HINCRBY', state_key, 'opens', 1)
  redis.call('SET', open_key, reason, 'PX', open_ms)
  redis.call('DEL', probe_key)
end

local function close()
  redis.call('HSET', state_key, 'state', 'closed', 'failures', 0)
  redis.call('DEL', open_key, probe_key)
end

local st = current()
if op == 'peek' then
  if st == 'open' then return {st, remaining_open()} end
  return {st, 0}
elseif op == 'acquire' then
  if st == 'closed' then return {'closed', 0} end
  if st == 'open' then return {'open', remaining_open()} end
  if redis.call('SET', probe_key, token, 'NX', 'PX', probe_ttl) then return {'probe', 0} end
  return {'busy', redis.call('PTTL', probe_key)}
elseif op == 'failure' then
  if st == 'open' then return {'open', 0} end
  if st == 'half_open' then
    open()
    return {'opened', 0}
  end
  local n = redis.call('HINCRBY', state_key, 'failures', 1)
  if n >= threshold then
    open()
    return {'opened', n}
  end
  return {'closed', n}
elseif op == 'success' then
  if st == 'open' then return {'open', 0} end
  close()
  return {'closed', 0}
elseif op == 'neutral' then
  if redis.call('GET', probe_key) == token then redis.call('DEL', probe_key) end
  return {st, 0}
end
return redis.error_reply('unknown breaker op ' .. tostring(op))
