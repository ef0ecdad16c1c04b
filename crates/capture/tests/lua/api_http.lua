-- http_on for all eight event types, the http body feed, and the MolochData
-- methods. Each event is recorded as "direction:TYPE:data" in lua.text.

local names = {}
for name, value in pairs(MolochSession.HTTP) do names[value] = name end

local function record(session, data, direction, kind)
  local shown = "nil"
  if data ~= nil then shown = data:get() end
  if #shown > 40 then return end -- long body pieces are not recorded
  session:add_string("lua.text", direction .. ":" .. kind .. ":" .. shown)
end

for value, name in pairs(names) do
  if name ~= "BODY" then
    -- Registered by function value.
    MolochSession.http_on(value, function(session, data, direction)
      record(session, data, direction, name)
    end)
  end
end

function recordBody(session, data, direction)
  record(session, data, direction, "BODY")
end
MolochSession.http_on(MolochSession.HTTP.BODY, "recordBody")

-- Returns -1 after the first piece: not called again for this session.
ArkimeSession.http_on(ArkimeSession.HTTP.BODY, function(session, data, direction)
  local t = session:table()
  t.bodyPieces = (t.bodyPieces or 0) + 1
  return -1
end)

local re = MolochData.pcre_create("(d)efgh")
local glob = MolochData.pattern_create("*abcdefgh*")

function feed(session, data)
  local t = session:table()
  t.current = data
  t.feedPieces = (t.feedPieces or 0) + 1
  t.feedBytes = (t.feedBytes or 0) + #data:get()
  if t.feedPieces == 1 then
    session:add_string("lua.text", "data:memmem=" .. tostring(data:memmem("abcdefgh")) .. "," .. tostring(data:memmem("zzz")))
    local ok, m, g = data:pcre_match(re)
    session:add_string("lua.text", "data:pcre=" .. tostring(data:pcre_ismatch(re) and ok) .. "," .. m .. "," .. g)
    session:add_string("lua.text", "data:glob=" .. tostring(data:pattern_ismatch(glob)))
    session:add_string("lua.text", "data:new=" .. MolochData.new("xyz"):get())
    t.copy = data:copy()
    t.original = data
  end
end
MolochSession.register_body_feed("http", "feed")

-- A second feed gets the same handle as the first for the same piece; the
-- handle it kept from the previous piece no longer reads.
MolochSession.register_body_feed("http", function(session, data)
  local t = session:table()
  if rawequal(t.current, data) and #data:get() > 0 then
    t.shared = (t.shared or 0) + 1
  end
  if t.previous and not pcall(t.previous.get, t.previous) then
    t.stale = (t.stale or 0) + 1
  end
  t.previous = data
end)

MolochSession.register_save(function(session, final)
  local t = session:table()
  session:add_tag("body-pieces-" .. tostring(t.bodyPieces))
  session:add_tag("feed-pieces-" .. tostring(t.feedPieces))
  session:add_tag("shared-" .. tostring(t.shared) .. "-stale-" .. tostring(t.stale))
  session:add_string("lua.text", "body:" .. tostring(t.feedBytes))
  local stale = pcall(function() return t.original:get() end)
  if #t.copy:get() > 0 and not stale then
    session:add_tag("copy-kept")
  end
end)
