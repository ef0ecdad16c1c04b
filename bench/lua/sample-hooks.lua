-- Benchmark: the hooks the entropy and credit-card samples register (two
-- HTTP body feeds, a pre-save and a save callback), each doing nothing: the
-- engine's own cost of running those callbacks.
function emptyBody(session, data) end
function emptySave(session, final) end
ArkimeSession.register_body_feed("http", "emptyBody")
ArkimeSession.register_pre_save("emptySave")
MolochSession.register_body_feed("http", function(session, data) end)
MolochSession.register_save(function(session, final) end)
