"""The Lua scripts that make each claim, lease and route one atomic step in the engine.

Under one hash tag per group (so the data model also runs on a Redis Cluster):

- ``{chatsh:X}:nodes``: node -> ``"<incarnation> <lease expiry in ms>"``, the
  expiry on the engine's own clock (``TIME``), so machines' clocks never matter;
- ``{chatsh:X}:claims``: name skeleton -> ``"<node> <name>"``;
- ``{chatsh:X}:inbox:<node>``: a hash of the node's inbox, its ``epoch``, the
  ``incarnation`` it belongs to, its ``limit`` in bytes, and the bytes ``added``
  and ``read`` since it began; ``{chatsh:X}:inbox:<node>/<epoch>``, the stream of
  deliveries that wait for the node (a node name holds no ``/``). Both expire
  unless the node's heartbeat renews them, so the inbox of a node gone for good
  goes by itself; a route adds to a stream (``NOMKSTREAM``) only for a node that
  holds a live lease, listens (on ``{chatsh:X}:reader:<node>``) and has room;
- ``{chatsh:X}:routed:<id>``: what a route that stored something answered, for a
  while, so that a node that lost the answer can ask; ``-`` fences a route that a node
  gave up on (run later, it does nothing).

A claim whose node has no live lease is free to take. An entry of another shape
(anything can write to the engine), an inbox count that no route or trim leaves, or a
key of another kind counts as absent and is removed where it is met, so one bad entry
never makes the scripts fail. Every script gets
``KEYS = {claims, nodes}``; those that reach an inbox get the group's key prefix
(``{chatsh:X}:``) among their arguments. A claim and a route carry the moment the
node gives up on them, on the engine's clock: run later (the engine hung, or was
slow), they do nothing, so a node never tells a refusal that the engine then undoes.
"""

from __future__ import annotations

_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function late(deadline, now)
  local at = tonumber(deadline)
  return at ~= nil and at > 0 and now >= at
end
local function lease_of(node)
  local value = redis.call('HGET', KEYS[2], node)
  if not value then return nil, 0 end
  local incarnation, expiry = string.match(value, '^(%S+) (%d+)$')
  if not incarnation then
    redis.call('HDEL', KEYS[2], node)
    return nil, 0
  end
  return incarnation, tonumber(expiry)
end
local function claim_of(skeleton, value)
  local node, name = string.match(value, '^(%S+) (.+)$')
  if not node then redis.call('HDEL', KEYS[1], skeleton) end
  return node, name
end
local live_cache = {}
local function is_live(node, now)
  if not node then return false end
  local known = live_cache[node]
  if known == nil then
    local _, expiry = lease_of(node)
    known = expiry > now
    live_cache[node] = known
  end
  return known
end
local function drop_claims_of(node, keep)
  local claims = redis.call('HGETALL', KEYS[1])
  local prefix = node .. ' '
  for i = 1, #claims, 2 do
    if not keep[claims[i]] and string.sub(claims[i + 1], 1, #prefix) == prefix then
      redis.call('HDEL', KEYS[1], claims[i])
    end
  end
end
local function holds_lease(node, incarnation, now)
  local held, expiry = lease_of(node)
  return held == incarnation and expiry > now
end
local function inbox_of(prefix, node)
  return prefix .. 'inbox:' .. node
end
local function kind(key)
  return redis.call('TYPE', key)['ok']
end
for _, key in ipairs(KEYS) do  -- the claims or the leases as another kind of key: junk
  local found = kind(key)
  if found ~= 'hash' and found ~= 'none' then redis.call('DEL', key) end
end
local function count_of(value, least)
  -- a count as HINCRBY takes it (decimal digits, within a double's integers), else nil
  if not value or #value > 15 or not string.match(value, '^%d+$') then return nil end
  local number = tonumber(value)
  if number < least then return nil end
  return number
end
local function counts_of(inbox)
  -- an inbox's epoch, limit and bytes added and read, nil for each that is junk
  if kind(inbox) ~= 'hash' then return nil, nil, nil, nil end
  local epoch, limit, added, read = unpack(redis.call('HMGET', inbox, 'epoch', 'limit',
                                                      'added', 'read'))
  return epoch, count_of(limit, 1), count_of(added, 0), count_of(read, 0)
end
local function sound_inbox(inbox, incarnation)
  -- the inbox's epoch if it is this process's and whole (its counts such as routes and
  -- trims leave them, its stream there), else nil
  local epoch, limit, added, read = counts_of(inbox)
  if epoch and limit and added and read and added - read <= limit
      and redis.call('HGET', inbox, 'incarnation') == incarnation
      and kind(inbox .. '/' .. epoch) == 'stream' then
    return epoch
  end
  return nil
end
local function record_of(prefix, route)
  return prefix .. 'routed:' .. route
end
local function keep_inbox(inbox, epoch, ms)
  redis.call('PEXPIRE', inbox, ms)
  return redis.call('PEXPIRE', inbox .. '/' .. epoch, ms)
end
"""

REGISTER = _COMMON + """
-- ARGV: node, incarnation, lease ms, inbox ms, key prefix, a new epoch, inbox limit.
-- {the epoch of the node's inbox, the engine's time in ms}: the inbox this process has
-- while it lives, else a new, empty one. 0 when another live process has this node name.
-- A new process under a dead one's node name inherits none of its claims nor its inbox.
local now = now_ms()
local held, expiry = lease_of(ARGV[1])
if held and held ~= ARGV[2] then
  if expiry > now then return 0 end
  drop_claims_of(ARGV[1], {})
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. (now + tonumber(ARGV[3])))
local inbox = inbox_of(ARGV[5], ARGV[1])
local epoch = sound_inbox(inbox, ARGV[2])
if not epoch then
  local old = kind(inbox) == 'hash' and redis.call('HGET', inbox, 'epoch')
  if old then redis.call('DEL', inbox .. '/' .. old) end
  redis.call('DEL', inbox)
  epoch = ARGV[6]
  redis.call('HSET', inbox, 'epoch', epoch, 'incarnation', ARGV[2], 'added', 0, 'read', 0)
  redis.call('XADD', inbox .. '/' .. epoch, '*', 'd', '')  -- a stream, empty at once
  redis.call('XTRIM', inbox .. '/' .. epoch, 'MAXLEN', 0)
end
redis.call('HSET', inbox, 'limit', ARGV[7])
keep_inbox(inbox, epoch, ARGV[4])
return {epoch, now}
"""

RENEW = _COMMON + """
-- ARGV: node, incarnation, lease ms, inbox ms, key prefix, epoch. The engine's time in ms;
-- 0 when the lease lapsed or is gone, or the inbox is (the engine restarted empty).
local now = now_ms()
if not holds_lease(ARGV[1], ARGV[2], now) then return 0 end
local inbox = inbox_of(ARGV[5], ARGV[1])
if sound_inbox(inbox, ARGV[2]) ~= ARGV[6] then return 0 end
keep_inbox(inbox, ARGV[6], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. (now + tonumber(ARGV[3])))
return now
"""

CLAIM = _COMMON + """
-- ARGV: deadline (engine ms, 0 for none), node, incarnation, reclaim (0/1), then
-- skeleton, name pairs. Per name: 1 taken for this node, 0 held by another live node (or
-- by this one, unless reclaiming), -1 this node holds no lease or the call came late.
-- Reclaiming first drops this node's claims that are not in the list (users who left
-- while it was away).
local now = now_ms()
local node, incarnation, reclaim = ARGV[2], ARGV[3], ARGV[4]
local fenced = late(ARGV[1], now) or not holds_lease(node, incarnation, now)
if reclaim == '1' and not fenced then
  local keep = {}
  for i = 5, #ARGV, 2 do keep[ARGV[i]] = true end
  drop_claims_of(node, keep)
end
local out = {}
for i = 5, #ARGV, 2 do
  local wanted = node .. ' ' .. ARGV[i + 1]
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if fenced then
    out[#out + 1] = -1
  elseif current and not (reclaim == '1' and current == wanted)
      and is_live(claim_of(ARGV[i], current), now) then
    out[#out + 1] = 0
  else
    redis.call('HSET', KEYS[1], ARGV[i], wanted)
    out[#out + 1] = 1
  end
end
return out
"""

RELEASE = _COMMON + """
-- ARGV: skeleton, "<node> <name>". Only the holder's own claim goes.
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return 1
"""

NAMES = _COMMON + """
-- Names held by live nodes, at most ARGV[1] of them; claims of dead nodes are cleared
-- on the way.
local now = now_ms()
local limit = tonumber(ARGV[1])
local claims = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #claims, 2 do
  local node, name = claim_of(claims[i], claims[i + 1])
  if is_live(node, now) then
    if #out < limit then
      out[#out + 1] = name
    end
  else
    redis.call('HDEL', KEYS[1], claims[i])
  end
end
return out
"""

ROUTE = _COMMON + """
-- ARGV: deadline (engine ms, 0 for none), the PUBSUB subcommand that counts a channel's
-- listeners (NUMSUB, or SHARDNUMSUB on a Redis Cluster), key prefix, the route's id, ms
-- its record lives, then skeleton, name, DELIVERY lines triples. Deliveries for one node
-- are added to its inbox as one entry of "<name> <length>\\n<lines>" records. Per
-- triple: 1 when stored for a live node that listens and has room, else 0 (all 0 when
-- the call came late, or the route was fenced, see OUTCOME). When any was stored, the
-- answer is recorded under the route's id, in the same step (a replica gets both). An
-- error raised is raised before anything is stored (the node takes it for a refusal).
local now = now_ms()
local batches, order, target = {}, {}, {}
local record = record_of(ARGV[3], ARGV[4])
if late(ARGV[1], now) or redis.call('EXISTS', record) == 1 then
  local out = {}
  for i = 6, #ARGV, 3 do out[#out + 1] = 0 end
  return out
end
for i = 6, #ARGV, 3 do
  local slot = (i - 3) / 3
  target[slot] = false
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if current then
    local node, name = claim_of(ARGV[i], current)
    if name == ARGV[i + 1] and is_live(node, now) then
      local parts = batches[node]
      if not parts then
        parts = {}
        batches[node] = parts
        order[#order + 1] = node
      end
      parts[#parts + 1] = name .. ' ' .. #ARGV[i + 2] .. '\\n'
      parts[#parts + 1] = ARGV[i + 2]
      target[slot] = node
    end
  end
end
local function store(node, payload)
  local listening = redis.call('PUBSUB', ARGV[2], ARGV[3] .. 'reader:' .. node)
  if tonumber(listening[2]) == 0 then return false end
  local inbox = inbox_of(ARGV[3], node)
  local epoch, limit, added, read = counts_of(inbox)
  if not (epoch and limit and added and read)
      or math.max(added - read, 0) + #payload > limit then
    return false
  end
  -- no stream, no entry; refused under the engine's maxmemory: an error, not a raise
  local id = redis.pcall('XADD', inbox .. '/' .. epoch, 'NOMKSTREAM', '*', 'd', payload)
  if type(id) ~= 'string' then return false end
  redis.call('HINCRBY', inbox, 'added', #payload)
  return true
end
local stored = {}
for _, node in ipairs(order) do
  stored[node] = store(node, table.concat(batches[node]))
end
local out, marks = {}, {}
for slot = 1, #target do
  local node = target[slot]
  out[slot] = (node and stored[node]) and 1 or 0
  marks[slot] = out[slot]
end
local answer = table.concat(marks)
if string.find(answer, '1', 1, true) then
  -- a script's writes are all refused or none (the engine decides as it starts): the
  -- XADD went, so this does too
  redis.call('SET', record, answer, 'PX', ARGV[5])
end
return out
"""

OUTCOME = _COMMON + """
-- ARGV: key prefix, a route's id, its deadline (engine ms, 0 for none), ms a fence lives
-- when the route has no deadline, the asking node's inbox and the epoch it had when the
-- route went. What the route did, for a node that lost its answer: its answer as a
-- string of 1s and 0s if it stored anything; "" if it did not and never will (it came
-- late, or it is fenced now: run later, it does nothing); "?" if nobody can tell (the
-- node's inbox is not the one it had: the engine lost its data since, the answer with
-- it); nil when that cannot be made sure yet (the engine refuses writes and the deadline
-- is still to come).
local record = record_of(ARGV[1], ARGV[2])
local found = kind(record)
if found == 'string' then
  local answer = redis.call('GET', record)
  return answer == '-' and '' or answer
elseif found ~= 'none' then
  redis.call('DEL', record)  -- junk: no route's answer
end
if kind(ARGV[5]) ~= 'hash' or redis.call('HGET', ARGV[5], 'epoch') ~= ARGV[6] then
  return '?'
end
local now = now_ms()
if late(ARGV[3], now) then return '' end
local deadline = tonumber(ARGV[3]) or 0
local lives = deadline > 0 and deadline - now + 1000 or tonumber(ARGV[4])
local fenced = redis.pcall('SET', record, '-', 'PX', lives)
if type(fenced) == 'table' and fenced.ok then return '' end
return false
"""

TRIM = """
-- ARGV: key prefix, node, epoch, the first id to keep, bytes read from the inbox in all.
-- The node has passed on what it read: it goes, and its bytes make room again.
local inbox = ARGV[1] .. 'inbox:' .. ARGV[2]
if redis.call('TYPE', inbox)['ok'] ~= 'hash' or redis.call('HGET', inbox, 'epoch') ~= ARGV[3]
    or redis.call('TYPE', inbox .. '/' .. ARGV[3])['ok'] ~= 'stream' then
  return 0
end
redis.call('XTRIM', inbox .. '/' .. ARGV[3], 'MINID', ARGV[4])
if tonumber(ARGV[5]) > (tonumber(redis.call('HGET', inbox, 'read')) or 0) then
  redis.call('HSET', inbox, 'read', ARGV[5])
end
return 1
"""

LEAVE = _COMMON + """
-- ARGV: node, incarnation, key prefix. A node that stops gives back its lease, its names
-- and its inbox.
local value = redis.call('HGET', KEYS[2], ARGV[1])
if not value or string.match(value, '^%S+') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
drop_claims_of(ARGV[1], {})
local inbox = inbox_of(ARGV[3], ARGV[1])
local epoch = kind(inbox) == 'hash' and redis.call('HGET', inbox, 'epoch')
if epoch then redis.call('DEL', inbox .. '/' .. epoch) end
redis.call('DEL', inbox)
return 1
"""
