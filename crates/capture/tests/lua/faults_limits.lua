-- Runaway scripts: a parser that never returns, a classifier that
-- allocates without bound, and a MolochData kept past its callback.

MolochSession.register_tcp_classifier("loop", 0, "", function(session, str, direction)
  session:register_parser(function(s, data, d)
    while true do end                                      -- reported at line 5
  end)
end)

MolochSession.register_udp_classifier("bomb", 0, "", function(session, str, direction)
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end
end)

local kept
MolochSession.register_body_feed("http", function(session, data)
  kept = data
end)

MolochSession.register_save(function(session, final)
  if kept then
    session:add_tag(kept:get())                            -- line 22
  end
end)
