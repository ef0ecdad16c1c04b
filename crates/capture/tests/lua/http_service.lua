-- MolochHttpService: a lookup per session before it is saved, and a POST
-- when a TCP session is classified. The save waits for the answers
-- (incr_outstanding / decr_outstanding); the callbacks run on the packet
-- thread that owns the session. @PORT@ and @MAXREQ@ are filled in by the
-- test.

local service = MolochHttpService.new("http://127.0.0.1:@PORT@", 2, @MAXREQ@)
assert(tostring(service):find("MolochHttpService", 1, true))

local function ask(session, method, path, data, label)
  session:incr_outstanding()
  local sent = service:request(method, path, data, function(code, body)
    session:add_tag(label .. "-" .. code)
    session:add_string("lua.text", label .. ":" .. body)
    session:decr_outstanding()
  end)
  if not sent then
    session:add_tag("request-refused")
    session:decr_outstanding()
  end
end

MolochSession.register_tcp_classifier("lookup", 0, "GET", function(session, str, direction)
  ask(session, "POST", "/note", session.dstIp, "post")
end)

function lookup(session, final)
  ask(session, "GET", "/lookup?src=" .. session.srcIp .. "&port=" .. session.srcPort, "", "lookup")
end
MolochSession.register_pre_save("lookup")
MolochSession.register_save(function(session, final)
  session:add_tag("saved")
end)
