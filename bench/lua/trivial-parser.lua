-- Benchmark: a parser on every TCP session that is called with every chunk
-- of data and does nothing.
MolochSession.register_tcp_classifier("all", 0, "", function(session, str, direction)
  if direction == 0 then
    session:register_parser(function(s, data, d) return 0 end)
  end
end)
