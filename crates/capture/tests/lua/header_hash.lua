-- A hash (64-bit FNV-1a, hex) of the request's header names in order, as
-- sent, joined with ':' — written to the custom field http_req_hdr_hash.

local function fnv1a64(s)
  local h = -3750763034362895579 -- 0xcbf29ce484222325 as a signed integer
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = h * 1099511628211 -- 64-bit wrap-around multiplication
  end
  return string.format("%016x", h)
end

function http_mb(session, data, dir)
  if dir == 0 then session:table().headers = {} end
end

function http_header_field(session, data, dir)
  local t = session:table()
  if dir == 0 and t.headers then table.insert(t.headers, tostring(data)) end
end

function http_hc(session, data, dir)
  local t = session:table()
  if dir == 0 and t.headers then
    session:add_string("http_req_hdr_hash", fnv1a64(table.concat(t.headers, ":")))
  end
end

ArkimeSession.http_on(ArkimeSession.HTTP.HEADER_FIELD_RAW, "http_header_field")
ArkimeSession.http_on(ArkimeSession.HTTP.MESSAGE_BEGIN, "http_mb")
ArkimeSession.http_on(ArkimeSession.HTTP.HEADERS_COMPLETE, "http_hc")
