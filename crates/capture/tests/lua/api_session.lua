-- Every MolochSession function and property, run over http-301-get.pcap
-- (TCP, 10.180.156.141:62341 -> 192.30.252.130:80) and dns-udp.pcap (UDP).
-- Results land in the custom fields lua.text / lua.number and in tags, which
-- the Rust test asserts.

local uriId = Moloch.expression_to_fieldId("http.uri")
assert(type(uriId) == "number")
assert(Arkime.expression_to_fieldId("http.uri") == uriId)
assert(ArkimeSession == MolochSession and ArkimeData == MolochData)
assert(MolochSession.HTTP.MESSAGE_BEGIN == 2 and MolochSession.HTTP.HEADER_FIELD_RAW == 9)
local badOk, badErr = pcall(Moloch.expression_to_fieldId, "no.such.field")
assert(not badOk and tostring(badErr):find("custom%-fields"), tostring(badErr))

function chunkParser(session, str, direction)
  local t = session:table()
  t.chunks = t.chunks + 1
  t.bytes[direction] = (t.bytes[direction] or 0) + #str
  if t.chunks >= 2 then
    session:add_tag("parser-stopped")
    return -1
  end
  return 0
end

-- Registered by name (looked up when called, defined above or later).
function tcpClassify(session, str, direction)
  local t = session:table()
  t.classified = (t.classified or 0) + 1
  if direction ~= 0 then
    session:add_tag("classified-dir1")
    return
  end
  t.chunks = 0
  t.bytes = {}
  session:add_tag("classified-dir0")
  session:add_string("lua.text", str:sub(1, 3))
  session:add_string(uriId, "/from-lua")
  assert(session:add_int("lua.number", #str) == true)
  assert(session:add_int("lua.number", #str) == false)
  session:add_protocol("luaproto")
  if session:has_protocol("luaproto") and not session:has_protocol("nope") then
    session:add_tag("has-protocol-works")
  end
  session:add_string("lua.text", string.format("%s|%s|%d|%d|%s|%s", session.srcIp,
    session.dstIp, session.srcPort, session.dstPort, session.ipProtocol, session.protocol))
  session:add_string("lua.text", tostring(session))
  session:add_string("lua.text", "get=" .. session:get("lua.number")[1])
  session:add_string("lua.text", "get-ip=" .. session:get("ip.src") .. ":" .. session:get("port.dst"))
  session:add_string("lua.text", "get-tags=" .. table.concat(session:get("tags"), ","))
  if session:get("entropy.http") == nil then session:add_tag("get-nil") end
  local ok, err = pcall(session.add_string, session, "no.such.field", "x")
  if not ok and tostring(err):find("unknown field 'no.such.field'") then
    session:add_tag("unknown-field-rejected")
  end
  local ok2 = pcall(session.add_int, session, "lua.number", "not a number")
  if not ok2 then session:add_tag("bad-int-rejected") end
  session:register_parser(chunkParser)
end
MolochSession.register_tcp_classifier("luatest", 0, "GET", "tcpClassify")
-- A second classifier with an offset, by function value.
MolochSession.register_tcp_classifier("luatest-offset", 5, "1.1", function(session, str, direction)
  session:add_tag("offset-classifier-dir" .. direction)
end)

ArkimeSession.register_udp_classifier("luadns", 2, "\001\000", function(session, str, direction)
  session:add_tag("udp-classified")
  session:add_string("lua.text", session.ipProtocol .. ":" .. session.dstPort)
  session:register_parser(function(s, str, d) s:add_int("lua.number", #str) end)
end)

function preSave(session, final)
  session:add_tag("pre-save-" .. tostring(final))
end
MolochSession.register_pre_save("preSave")
MolochSession.register_save(function(session, final)
  local t = session:table()
  if t.chunks then
    session:add_int("lua.number", 1000 + t.chunks)
    session:add_int("lua.number", 2000 + (t.bytes[0] or 0))
    session:add_int("lua.number", 3000 + (t.bytes[1] or 0))
    session:add_int("lua.number", 4000 + t.classified)
  end
  session:add_tag("save-" .. tostring(final))
end)
