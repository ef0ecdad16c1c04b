-- A Lua error in every kind of callback. None of them may change a
-- document or stop the capture; each failing line is counted.

function tcpClassify(session, str, direction)
  session:register_parser(function(s, data, d)
    error("parser boom")                                   -- line 6
  end)
  error("classifier boom")                                 -- line 8
end
MolochSession.register_tcp_classifier("faulty", 0, "", "tcpClassify")

MolochSession.register_udp_classifier("faulty-udp", 0, "", function(session, str, direction)
  local x = nil
  return x.field                                           -- line 14
end)

MolochSession.http_on(MolochSession.HTTP.HEADER_FIELD, function(session, data, direction)
  error({ not_a = "string" })                              -- line 18 (reported at 17)
end)

MolochSession.register_body_feed("http", function(session, data)
  session:add_string("no.such.field", data:get())          -- line 22
end)

MolochSession.register_pre_save(function(session, final)
  error("pre-save boom")                                   -- line 26
end)

MolochSession.register_save(function(session, final)
  session:add_int("lua.number", "twelve")                  -- line 30
end)

-- Registered by a name that is never defined.
MolochSession.register_save("missingSaveFunction")
