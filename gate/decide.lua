-- decide.lua: admit, reserve or defer a batch of jobs against several limits, atomically, in O(log n) per job.
-- Loaded once and run with EVALSHA by gate/limiter.py, which writes the limiter's constants in the CONFIG line
-- below (they are the same for every call of one limiter, so they cost no argument parsing: the script's SHA
-- is per configuration). Key names come from common/redis_keys.py.
--
-- KEYS[1]            circuit-breaker flag (exists = open; PTTL = remaining open time)
-- KEYS[2]            limiter epoch (missing = Redis lost the limiter's memory: the last W counts as full)
-- per record i       KEYS[b+1] job state, KEYS[b+2] the creator's order set, KEYS[b+3 .. b+2+L] limit keys,
--                    KEYS[b+3+L .. b+2+2L] their TTL marks (see "TTLs" below), with b = 2 + (i-1) * (2 + 2L)
-- ARGV               per record: member (the job's stable identity) and its order score (the producer's send
--                    time, us: a creator's jobs go in this order)
-- CONFIG (locals)    breaker_default_us: breaker retry (us) when the flag has no TTL
--                    horizon (us): slots further away are not reserved
--                    settle (us): a duplicate of a just-admitted job waits this long for the first copy's send
--                    admitted_ttl (ms): how long an admitted job is remembered (duplicates stay harmless)
--                    stale (us): a waiting job whose slot passed this long ago no longer holds back its creator
--                    order_settle (us): a new job is not admitted before the gate has known it this long, so
--                    that an earlier job of its creator, received by another invocation at about the same time
--                    (fresh jobs, or a backlog returning to both pollers at once), is registered first and goes
--                    first (0: admit at once when its creator has no job in line)
--                    L, the number of limits; per limit j: kinds[j] ('w' sliding | 'b' token bucket), caps[j]
--                    N, windows[j] W (us), guards[j] G (us): slack added between consecutive groups of N future
--                    slots, absorbing return lag
--
-- Returns {now_us, then per record: status, retry_us, remaining, slot_us}. Status codes are Status in
-- gate/limiter.py. Time is Redis TIME; the caller's clock is never used.
--
-- A sliding limit is ONE sorted set per limit: real admission times (past) and reserved slots (future or just
-- passed), member = the job's identity. The invariants each step keeps:
--  (I1) at most N real admissions in any W: an admission happens only at `now` (Redis TIME, monotone), and only
--       if fewer than N other entries (admissions or reservations) lie in (now-W, now]. Admission times are
--       never removed while they can matter (trim only below now-W), so "at most N in any W" holds on them.
--  (I2) a new slot t is never earlier than (N-th largest entry) + W: it lands after every existing entry's
--       window is full, so the schedule itself never exceeds N in any W and each decision costs O(log n):
--       ZREVRANGE by rank, not a scan of the reservations.
--  (I3) a duplicate never changes the set: a job's state key says reserved (slot, order score), admitted (time) or
--       forwarded. Only a job's first delivery adds an entry, only the return of a reserved job moves its own
--       entry (slot -> real time, never earlier), and nothing ever deletes an admission. Moving an entry later
--       never under-counts a window that is still ahead: a window ending at or after the new time that held
--       the old time holds the new one too.
--  (I4) per-creator order: every job the gate knows of and has not yet forwarded is in its creator's order
--       set, scored by its producer's send time. A job is admitted only when it heads that set, and it stays
--       at the head until the gate marks it forwarded (gate/limiter.py removes it then): one creator has at
--       most one job between admission and forward, so two invocations never race one creator's sends. A new
--       job waits `order settle` before its first admission, so that an earlier job of its creator received
--       by another invocation at about the same time takes its place in line first.
--  (I5) memory lost (epoch missing): the epoch is set to now and no limit admits before epoch + W.

--  TTLs (bounded memory): every key written here has a TTL (the epoch excepted, I5) that never ends before an
--       entry's need: a log outlives its latest entry's window, a creator's line its latest job's slot + stale,
--       a state its job's use. A log's TTL is horizon + W + LOG_SLACK from the call that sets it; entries lie at
--       most `horizon` ahead of the call that writes them, and every version sets the same relative TTL, so a
--       later setting never ends earlier. A call sets it unless (a) the log held an entry when this call
--       counted it (the log existed before the write, so it already had a TTL: a log that a write creates
--       always gets one), and (b) the log's mark, a string key read in the MGET, still exists: the mark is set
--       with MARK_TTL < LOG_SLACK by a call that set the log's TTL, so while it exists the log ends after
--       now + horizon + W, after the window of any entry this call can write. A busy log pays its PEXPIRE (and
--       its mark's SET) once a minute; a log nobody writes ends with its TTL, its mark a minute after it was set.

-- Cost (bench/gate/cost.py, "Redis time per decision"; tests/gate/test_cost.py counts the commands): everything
-- below runs inside one EVALSHA and counts: each redis.call (the command plus Redis' marshalling of its
-- arguments and reply: the part that dominates; this body's own Lua work, beside the same commands written
-- straight, adds about 5 %) and the Lua work Redis redoes on every call. The limiter's constants are written
-- into the script (CONFIG), so a call parses only its records. A call reads all it can in one MGET (breaker
-- flag, epoch, every job state of the batch, every log's TTL mark; the breaker's PTTL only while it is open),
-- trims a log only when it sets its TTL or in a batch (every count is a range: stale entries never count), sets
-- a log's TTL only as TTLs above says, learns that a new job is a leftover from its own ZADD NX rather than a
-- ZSCORE first, and learns whether a creator's line was empty from the PEXPIRE NX after the job's own ZADD in
-- it (1: the line had no TTL, so the ZADD created it). Scores and bounds go to Redis as numbers, which Redis
-- prints itself (all times are whole us, so an open bound (a is a + 1). The common case, a new job under
-- sliding limits (admitted, reserved, or deferred past the horizon), is written out in the main loop;
-- everything else lives in the library, built only by a call that needs it: Redis runs this body on every
-- call, and each `local function` costs a closure every time. Every command is O(log n) in the log's size
-- (a count or a rank, never a scan of the reservations), and their number does not grow with the backlog.
-- A single new job: TIME, MGET, ZCOUNT, ZADD NX in its log, SET of its state, and its creator's line: ZADD +
-- PEXPIRE NX when it could go now (7 commands), ZADD + PEXPIRE and the rank (ZREVRANGE) when throttled (8);
-- past the horizon TIME, MGET, ZCOUNT, ZREVRANGE and ZSCORE, no write (5). A reserved job whose slot has come
-- (the library): TIME, MGET, its line's head, the window's count, its entry moved to now, its state, its place
-- in line kept (7). A batch pays TIME, MGET, the count and the rank once per log (then it counts its own adds),
-- and writes a log its new jobs share in one ZADD (after one ZMSCORE, pend): about 3.7 per job.
-- What cannot go: the plain sliding-log control runs 5 commands when it admits and 3 when it rejects, and
-- writes one log. A decision here writes three things, each a guarantee: its log entry (I1, I2), its state
-- (I3) and its place in its creator's line with that line's TTL (I4, TTLs); it reads TIME, the MGET (the
-- state: duplicates, I3; the epoch: I5; the breaker) and the count, and, when throttled, the rank bound.

local call = redis.call
local t = call('TIME')
local now = t[1] * 1000000 + t[2]
--@CONFIG@
local limit_ttl = {}
-- (TTLs, above) In ms; MARK_TTL < LOG_SLACK by a second, for the time between the two writes.
local LOG_SLACK, MARK_TTL = 60000, 59000
local all_w = true  -- every limit is a sliding log (the algorithm is one for all limits)
for j = 1, L do
  -- (I1, I2) A log must outlive its latest entry by W. Entries lie at most `horizon` ahead of the call that
  -- wrote them (a slot further away is not reserved), so this TTL never ends before the window of any entry
  -- written up to LOG_SLACK after it was set: a constant, so a later call only ever moves the end later.
  limit_ttl[j] = math.ceil((horizon + windows[j]) / 1000) + LOG_SLACK
  if kinds[j] ~= 'w' then all_w = false end
end
local n = #ARGV / 2
local stride = 2 + 2 * L
-- One decision's answer has its 5 slots from the start (a table that grows is rebuilt on the way).
local out = {now, 0, 0, 0, 0}
-- (I4) A creator's line outlives its latest job's need (its slot + stale, or an admission + settle + stale):
-- one constant TTL covering any slot within the horizon, so no call ever shortens another job's line.
local order_ttl = math.ceil((math.max(horizon, settle) + stale) / 1000) + 900000
-- Trimming is for memory only (every count below is a range that ignores entries before now - W, every rank
-- is from the top): a log is trimmed whenever a call gives it its TTL (at least once a minute while it is
-- written, TTLs), and by every batch of TRIM_EVERY or more that writes it. Entries older than now - W are thus
-- at most a minute's writes.
local TRIM_EVERY = 8
local trim = n >= TRIM_EVERY

-- One MGET: the breaker flag, the epoch, every job's state and the TTL mark of every sliding log of the call
-- (in chunks, for very large batches). mark_at: a log's key -> where its mark is in the answer.
local names = {KEYS[1], KEYS[2]}
for i = 1, n do names[i + 2] = KEYS[3 + (i - 1) * stride] end
local mark_at = {}
if all_w then
  local m = n + 2
  for i = 1, n do
    local base = 2 + (i - 1) * stride
    for j = 1, L do
      local key = KEYS[base + 2 + j]
      if mark_at[key] == nil then
        m = m + 1
        names[m] = KEYS[base + 2 + L + j]
        mark_at[key] = m
      end
    end
  end
end
local got
local total = #names
if total <= 1000 then
  got = call('MGET', unpack(names))
else
  got = {}
  for a = 1, total, 1000 do
    local part = call('MGET', unpack(names, a, math.min(total, a + 999)))
    for k = 1, #part do got[a + k - 1] = part[k] end
  end
end
-- States this call wrote: a job seen twice in one batch reads its first copy's outcome, not the MGET's.
local written = {}

-- (I5) The epoch is set once and never expires.
local epoch = tonumber(got[2])
if epoch == nil then
  epoch = now
  call('SET', KEYS[2], string.format('%.0f', now))
end
-- The breaker is open while its flag exists; its remaining time (PTTL) is read only then.
local breaker_pttl = -2
if got[1] then breaker_pttl = call('PTTL', KEYS[1]) end

-- Keys given their TTL (and trimmed) in this call: a batch pays it once per key.
local touched = {}
-- Limit keys whose window around now + order settle a new job of this call found full (see the main loop).
local full = {}
-- Per limit key, the entries within W either side of now + order settle, counted by one ZCOUNT and kept up to
-- date by this call's own adds (the main loop); dropped whenever the library writes the log.
local counted = {}
-- Limit keys a ZCOUNT of this call found holding an entry: they existed before this call wrote them.
local known = {}
-- (I2) Per limit key, the entries at ranks max(0, N-n) .. N-1 from the top, descending, plus the entries this
-- call's new jobs added (fewer than n before the last job reads it): the N-th latest entry is then the
-- (N - max(0, N-n))-th of this list (each added entry moves every fetched entry below it one rank down, in the
-- log as in the list, and at least one fetched entry is still at or above that place). One ZREVRANGE per call
-- and key instead of one per job (one entry for a single decision); dropped whenever the library writes the log.
local tops = {}
-- Everything off the common path (returning jobs, duplicates, leftovers, the breaker, token buckets), built
-- in the main loop, at the one place that needs it, by the first record that does.
local lib = nil

-- A batch writes the new entries of a log that two or more of its new jobs share (the global one, say) in one
-- ZADD (pend: key -> score, member, ...), not one each. (I3) Their leftovers are known first, from one ZMSCORE
-- per such log (leftover: key -> member -> true). (I1, I2) Whatever reads or writes such a log in Redis (a
-- count, a rank, the library) comes after flush: the log then holds every entry this call decided.
local pend, leftover, flush = {}, {}, nil
if n > 1 and all_w and breaker_pttl == -2 then
  local members, shared = {}, {}
  for i = 1, n do
    local key = KEYS[3 + (i - 1) * stride + 2]
    if not got[i + 2] then
      local list = members[key]
      if list == nil then list = {} members[key] = list end
      list[#list + 1] = ARGV[2 * i - 1]
      if #list == 2 then shared[#shared + 1] = key end
    end
  end
  for _, key in ipairs(shared) do
    local list, found = members[key], {}
    local scores = call('ZMSCORE', key, unpack(list))
    for k = 1, #list do
      if scores[k] then found[list[k]] = true end
    end
    leftover[key], pend[key] = found, {}
  end
  -- (TTLs) A log gets its TTL (and its trim) after its first write reaches Redis: here, for a pending log.
  flush = function(key)
    local p = pend[key]
    if p == nil or #p == 0 then return end
    call('ZADD', key, unpack(p))
    pend[key] = {}
    if not touched[key] then
      touched[key] = true
      local renew = not (known[key] and got[mark_at[key]])
      if trim or renew then call('ZREMRANGEBYSCORE', key, '-inf', now - windows[1]) end
      if renew then
        call('PEXPIRE', key, limit_ttl[1])
        if known[key] then call('SET', names[mark_at[key]], '1', 'PX', MARK_TTL) end
      end
    end
  end
end

for i = 1, n do
  local base = 2 + (i - 1) * stride
  local member = ARGV[2 * i - 1]
  local score = tonumber(ARGV[2 * i])
  if score == nil or score <= 0 then score = now end
  local state_key = KEYS[base + 1]
  local raw = written[state_key]
  if raw == nil then raw = got[i + 2] end
  local status, retry, slot, left
  if not raw and all_w and breaker_pttl == -2 then
    -- A new job under sliding limits, the breaker closed: library's new_job written out, step for step.
    -- new_slot: the first c >= now + order settle that fits every limit.
    local c, counts = now + order_settle, {}
    for round = 1, L + 1 do
      local next_c = c
      for j = 1, L do
        local key, w, cap = KEYS[base + 2 + j], windows[j], caps[j]
        -- (I1, I5) fits: fewer than N entries within W either side of c (none before epoch + W).
        -- In the first round c is the same for every new job of the call, and within a call entries are only
        -- added or moved to now: a window found full around it stays full, so later jobs skip the ZCOUNT; one
        -- that is not full is counted once, then by this call's adds (counted).
        local count = cap
        if epoch + w <= c and not (round == 1 and full[key]) then
          if round == 1 and counted[key] then
            count = counted[key]
          else
            if pend[key] then flush(key) end
            count = call('ZCOUNT', key, c - w + 1, c + w - 1)
            if count > 0 then known[key] = true end
            if round == 1 then counted[key] = count end
          end
          if round == 1 and count >= cap then full[key] = true end
        end
        if round == 1 then counts[j] = count end
        if count >= cap then
          -- (I2) The rank bound: the N-th latest entry + W (+ the guard when ahead), O(log n).
          local b = epoch + w
          local z = tops[key]
          if z == nil then
            if pend[key] then flush(key) end
            local first = math.max(0, cap - n)
            local r = call('ZREVRANGE', key, first, cap - 1, 'WITHSCORES')
            z = {skip = first}
            for k = 2, #r, 2 do z[k / 2] = tonumber(r[k]) end
            tops[key] = z
          end
          local nth = z[cap - z.skip]
          if nth then
            local at = nth + w
            if at > now then at = at + guards[j] end
            if at > b then b = at end
          end
          if b > next_c then next_c = b end
        end
      end
      if next_c == c or L == 1 then c = next_c break end
      c = next_c
    end
    local order_key = KEYS[base + 2]
    local taken, line, lined = nil, 1, false
    if c <= now then
      -- (I4) Is its creator's line empty? The job joins the line, then PEXPIRE NX answers: 1 = the line had no
      -- TTL, so this ZADD created it (every write that may create a line gives it its TTL in the same call,
      -- TTLs), and the creator had no job in line. A line that was there gets its TTL renewed, once per call.
      call('ZADD', order_key, score, member)
      line = 1 - call('PEXPIRE', order_key, order_ttl, 'NX')
      if line == 1 and not touched[order_key] then call('PEXPIRE', order_key, order_ttl) end
      touched[order_key], lined = true, true
    end
    if line == 0 then
      -- (I1) Admitted now; (I4) alone in its creator's line, which it heads until marked forwarded.
      status, retry, slot, taken = 1, 0, now, 1
    elseif c - now <= horizon then
      -- (I2) Reserved at c; (I4) in line behind its creator's earlier jobs.
      status, retry, slot, taken = 3, c - now, c, 0
    end
    -- library's take, written out: the entry at `slot` in every limit. (I3) Added with NX: a job that already
    -- has an entry (a leftover) changes nothing and goes to the library. (I1) Trimmed only below now - W, after
    -- the write (the key exists when it gets its TTL).
    local past = status == nil
    if status ~= nil then
      for j = 1, L do
        local key = KEYS[base + 2 + j]
        local p = pend[key]
        if p then
          -- One ZADD for the batch (flush); (I3) a leftover goes to the library, as a failed NX would.
          if leftover[key][member] then status = nil break end
          p[#p + 1] = slot
          p[#p + 1] = member
        elseif j == 1 then
          if call('ZADD', key, 'NX', slot, member) == 0 then status = nil break end
        else
          call('ZADD', key, slot, member)
        end
        local z = tops[key]
        if z then
          local k = #z
          while k >= 1 and z[k] < slot do z[k + 1] = z[k] k = k - 1 end
          z[k + 1] = slot
        end
        -- (I1) The count around now + order settle, one more if the entry lies in it (a ZADD that moved an
        -- existing entry of the member counts one too many: a count too high is safe).
        local k0 = counted[key]
        if k0 and slot > now + order_settle - windows[j] and slot < now + order_settle + windows[j] then
          counted[key] = k0 + 1
        end
        if not touched[key] and not p then  -- (a pending log gets its TTL in flush)
          touched[key] = true
          -- (I1, I2) TTLs: skipped only while the log's mark says a call gave it its TTL less than MARK_TTL ago,
          -- and only if the log existed before this write (so the mark cannot outlive the log it speaks of).
          local renew = not (known[key] and got[mark_at[key]])
          if trim or renew then call('ZREMRANGEBYSCORE', key, '-inf', now - windows[j]) end
          if renew then
            call('PEXPIRE', key, limit_ttl[j])
            if known[key] then call('SET', KEYS[base + 2 + L + j], '1', 'PX', MARK_TTL) end
          end
        end
      end
    end
    -- Past the horizon, or a leftover (nothing was written): the library decides.
    if status ~= nil then
      if status == 1 then
        written[state_key] = string.format('a %.0f', now)
        call('SET', state_key, written[state_key], 'PX', admitted_ttl)
      end
      if not lined then
        call('ZADD', order_key, score, member)
        if not touched[order_key] then
          touched[order_key] = true
          call('PEXPIRE', order_key, order_ttl)
        end
      end
      if status == 3 then
        -- The state lives as long as the job may hold its creator's line.
        written[state_key] = string.format('r %.0f %.0f', c, score)
        call('SET', state_key, written[state_key], 'PX', math.ceil((c - now + stale) / 1000) + 900000)
      end
      for j = 1, L do
        local r = math.max(0, caps[j] - counts[j] - taken)
        if left == nil or r < left then left = r end
      end
    elseif past and call('ZSCORE', KEYS[base + 3], member) == false then
      -- library's new_job past the horizon, written out: (I3) not a leftover (no entry in the first log), so
      -- deferred without a slot; nothing is written. A backlog past the horizon costs no more than one within.
      status, retry, slot = 5, horizon, 0
      for j = 1, L do
        local r = math.max(0, caps[j] - counts[j])
        if left == nil or r < left then left = r end
      end
    end
  end
  if status == nil or left == nil then
    if flush then for key in pairs(pend) do flush(key) end end
    if lib == nil then
      lib = (function()
        local function fmt(x) return string.format('%.0f', x) end

        local function breaker_wait()
          if breaker_pttl == -1 then return breaker_default_us end
          return breaker_pttl * 1000
        end

        -- Token bucket (the seed's TokenBucketState hash); tokens below zero are reserved slots (debt).
        local function bucket_state(key, cap, w)
          local rate = cap / (w / 1000000)
          local h = call('HMGET', key, 'tokens', 'timestamp')
          local tokens, ts = tonumber(h[1]), tonumber(h[2])
          if tokens == nil or ts == nil then return cap, rate end
          return math.min(cap, tokens + math.max(0, now / 1000000 - ts) * rate), rate
        end

        local function bucket_take(key, cap, w)
          local tokens, rate = bucket_state(key, cap, w)
          tokens = tokens - 1
          call('HSET', key, 'tokens', string.format('%.6f', tokens),
            'timestamp', string.format('%.6f', now / 1000000), 'capacity', cap, 'refill_rate', string.format('%.6f', rate))
          call('PEXPIRE', key, math.ceil((cap - tokens) / rate * 1000) + 1000)
        end

        -- (I2) The earliest slot a new job may take under limit j, by rank: O(log n). Any t at or after it is safe.
        local function rank_bound(key, j)
          local b = epoch + windows[j]
          if kinds[j] == 'b' then
            local tokens, rate = bucket_state(key, caps[j], windows[j])
            if tokens < 1 then b = math.max(b, now + math.ceil((1 - tokens) / rate * 1000000)) end
            return b
          end
          local nth = call('ZREVRANGE', key, caps[j] - 1, caps[j] - 1, 'WITHSCORES')
          if nth[2] then
            local at = tonumber(nth[2]) + windows[j]
            if at > now then at = at + guards[j] end
            if at > b then b = at end
          end
          return b
        end

        -- Fewer than N entries within W either side of c: inserting c keeps every window containing it at N or less.
        -- Returns the count too (the remaining capacity of an admission now). O(log n).
        local function fits(key, j, c)
          if epoch + windows[j] > c then return false, caps[j] end
          if kinds[j] == 'b' then
            return (bucket_state(key, caps[j], windows[j])) >= 1 or c > now, 0
          end
          local count = call('ZCOUNT', key, '(' .. fmt(c - windows[j]), '(' .. fmt(c + windows[j]))
          if count > 0 then known[key] = true end
          return count < caps[j], count
        end

        -- The first c >= from that fits every limit: `from` if it fits (a job that finds room is never queued behind
        -- later reservations of other creators), else the latest rank bound among the limits that do not fit.
        local function new_slot(base, from)
          local c, counts = from, nil
          for _ = 1, L + 1 do
            local next_c, at_c = c, {}
            for j = 1, L do
              local ok, count = fits(KEYS[base + 2 + j], j, c)
              at_c[j] = count
              if not ok then next_c = math.max(next_c, rank_bound(KEYS[base + 2 + j], j)) end
            end
            counts = counts or at_c  -- the counts around now: the remaining capacity reported for this job
            -- A rank bound is safe by itself (I2): with one limit there is nothing left to check.
            if next_c == c or L == 1 then return next_c, counts end
            c = next_c
          end
          return c, counts
        end

        -- (I1) Wait (us) before `member` may be admitted now under limit j; 0 = admissible. `own` is its slot (nil: new).
        -- Also returns how many other entries lie in (now - W, now].
        local function window_wait(key, j, own)
          if epoch + windows[j] > now then return epoch + windows[j] - now, caps[j] end
          if kinds[j] == 'b' then return 0, nil end
          local lo = now - windows[j]
          local c = call('ZCOUNT', key, '(' .. fmt(lo), fmt(now))
          if c > 0 then known[key] = true end
          if own ~= nil and own > lo and own <= now then c = c - 1 end
          if c < caps[j] then return 0, c end
          local first = call('ZRANGEBYSCORE', key, '(' .. fmt(lo), fmt(now), 'WITHSCORES', 'LIMIT', c - caps[j], 1)
          return math.max(1000, tonumber(first[2] or now) - lo), c
        end

        local function remaining_now(base)
          local best = nil
          for j = 1, L do
            local key, r = KEYS[base + 2 + j], 0
            if kinds[j] == 'b' then
              r = math.floor(math.max(0, (bucket_state(key, caps[j], windows[j]))))
            else
              r = math.max(0, caps[j] - call('ZCOUNT', key, '(' .. fmt(now - windows[j]), fmt(now)))
            end
            if best == nil or r < best then best = r end
          end
          return best or 0
        end

        -- Record one admission (or a reservation at slot c) in every limit. (I3) A new job's entry is added with NX:
        -- if the job already has an entry (a leftover, see below), nothing changes and false is returned. Each log is
        -- trimmed only below now - W (I1: an admission that can still matter is never removed) and only after its
        -- write, so the key exists when it gets its TTL.
        local function take(base, member, c, fresh)
          for j = 1, L do
            local key = KEYS[base + 2 + j]
            if kinds[j] == 'b' then
              if fresh then bucket_take(key, caps[j], windows[j]) end
            else
              if fresh and j == 1 then
                if call('ZADD', key, 'NX', fmt(c), member) == 0 then return false end
              else
                call('ZADD', key, fmt(c), member)
              end
              tops[key] = nil  -- (I2) the main loop's rank cache no longer describes this log
              counted[key] = nil  -- (I1) nor its count
              if not touched[key] then
                touched[key] = true
                -- (I1, I2) TTLs and trimming as in the main loop: a log this call counted holding an entry, whose
                -- mark exists, keeps its TTL.
                local renew = not (known[key] and mark_at[key] and got[mark_at[key]])
                if trim or renew then call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - windows[j])) end
                if renew then
                  call('PEXPIRE', key, limit_ttl[j])
                  if known[key] and mark_at[key] then call('SET', KEYS[base + 2 + L + j], '1', 'PX', MARK_TTL) end
                end
              end
            end
          end
          return true
        end

        local function set_state(key, value, ttl)
          written[key] = value
          call('SET', key, value, 'PX', ttl)
        end

        local function parse_state(raw)
          if not raw then return nil end
          local kind, a, b = string.match(raw, '^(%a) ?(%d*) ?(%d*)$')
          return kind, tonumber(a), tonumber(b)
        end

        -- Capacity left now from the counts seen around now (minus `taken`); nil when a bucket is involved.
        local function remaining_of(counts, taken)
          local left = nil
          for j = 1, L do
            if kinds[j] ~= 'w' or counts[j] == nil then return nil end
            local r = math.max(0, caps[j] - counts[j] - (taken or 0))
            if left == nil or r < left then left = r end
          end
          return left
        end

        -- (I4) Put a job in its creator's line (kept until it is marked forwarded), then give the line its TTL.
        local function enqueue(order_key, score, member)
          call('ZADD', order_key, score, member)
          if not touched[order_key] then
            touched[order_key] = true
            call('PEXPIRE', order_key, order_ttl)
          end
        end

        -- (I4) How long a returning job must wait for an earlier job of its creator; 0 = it heads the line. An
        -- admitted head is being sent: wait for its forwarded mark, or, past the settle time, presume its gate died
        -- before the send (its redelivery goes again on its own) and stop waiting for it. A reserved head whose slot
        -- passed `stale` ago is presumed lost too. A head with no state, or forwarded, is left over: drop it.
        local head_wait = 50000
        local function order_wait(order_key, member, job_prefix)
          for _ = 1, 4 do
            local head = call('ZRANGE', order_key, 0, 0)[1]
            if head == nil or head == member then return 0 end
            local kind, at = parse_state(call('GET', job_prefix .. head))
            if kind == 'a' and now - at < settle then return head_wait end
            if kind == 'r' and at >= now - stale then return math.max(head_wait, at - now) end
            call('ZREM', order_key, head)
            -- (TTLs) The line may be gone now: the next write of this call gives it its TTL again.
            touched[order_key] = nil
          end
          return head_wait
        end

        local function admit(base, member, own)
          take(base, member, now, own == nil)
          set_state(KEYS[base + 1], 'a ' .. fmt(now), admitted_ttl)
        end

        local function returning(base, member, slot)
          if breaker_pttl ~= -2 then return 6, breaker_wait(), slot end
          if slot > now then return 4, slot - now, slot end
          local job_prefix = string.sub(KEYS[base + 1], 1, #KEYS[base + 1] - #member)
          local wait = order_wait(KEYS[base + 2], member, job_prefix)
          local left = nil
          for j = 1, L do
            local w, count = window_wait(KEYS[base + 2 + j], j, slot)
            wait = math.max(wait, w)
            if count ~= nil and kinds[j] == 'w' then
              local r = math.max(0, caps[j] - count - 1)
              if left == nil or r < left then left = r end
            end
          end
          if wait > 0 then return 8, wait, slot end
          admit(base, member, slot)
          -- (I4) It stays at the head of its creator's line until marked forwarded; a job that was not in line (its
          -- entry dropped as stale, or it had none) joins it, first, as the only job there may be.
          if call('ZADD', KEYS[base + 2], 'NX', 0, member) == 1 then enqueue(KEYS[base + 2], 0, member) end
          return 2, 0, slot, left
        end

        -- (I3) A job without state whose entry is still in a log (its state expired, or a Redis failover kept one key
        -- and not the other) is not new: it goes as a reserved job at its entry's time, moving its entry, never adding.
        -- Found by the NX of its first write (take); where a path ends without writing, by its score.
        local function leftover(base, member)
          if kinds[1] == 'w' then return tonumber(call('ZSCORE', KEYS[base + 3], member)) end
          return nil
        end

        local function new_job(base, member, score)
          if breaker_pttl ~= -2 then
            local a = leftover(base, member)
            if a ~= nil then return returning(base, member, a) end
            return 6, breaker_wait(), 0
          end
          local c, counts = new_slot(base, now + order_settle)
          if c <= now and call('EXISTS', KEYS[base + 2]) == 0 then
            if not take(base, member, now, true) then return returning(base, member, leftover(base, member)) end
            set_state(KEYS[base + 1], 'a ' .. fmt(now), admitted_ttl)
            enqueue(KEYS[base + 2], score, member)
            return 1, 0, now, remaining_of(counts, 1)
          end
          if c - now > horizon then
            local a = leftover(base, member)
            if a ~= nil then return returning(base, member, a) end
            return 5, horizon, 0, remaining_of(counts)
          end
          if not take(base, member, c, true) then return returning(base, member, leftover(base, member)) end
          enqueue(KEYS[base + 2], score, member)
          -- The state lives as long as the job may hold its creator's line.
          set_state(KEYS[base + 1], 'r ' .. fmt(c) .. ' ' .. fmt(score), math.ceil((c - now + stale) / 1000) + 900000)
          return 3, c - now, c, remaining_of(counts)
        end

        local function decide(base, member, score, raw)
          local kind, a = parse_state(raw)
          if kind == nil then return new_job(base, member, score) end
          if kind == 'f' then return 7, 0, 0 end
          if kind == 'a' then
            -- (I3) The first copy was admitted; its send may still be under way: wait for its mark. Past the settle
            -- time the first send is presumed lost (the gate died between send and mark): the job goes again like a
            -- reserved job whose slot is its first admission, moving its own entry, never adding one. If the first
            -- send did land, the FIFO deduplication id drops the second.
            if now - a < settle then return 9, settle - (now - a), a end
          end
          return returning(base, member, a)
        end

        return {decide = decide, remaining_now = remaining_now}
      end)()
    end
    if status == nil then status, retry, slot, left = lib.decide(base, member, score, raw) end
    if left == nil then left = lib.remaining_now(base) end
  end
  local o = 4 * i - 2
  out[o], out[o + 1], out[o + 2], out[o + 3] = status, retry, left, slot
end
if flush then for key in pairs(pend) do flush(key) end end
return out
