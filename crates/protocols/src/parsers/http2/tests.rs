use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::parsers::testutil::Harness;

/// A frame: header and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A literal header without indexing, new name, no Huffman (names and
/// values shorter than 127 bytes).
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut b = vec![0x00, name.len() as u8];
    b.extend_from_slice(name.as_bytes());
    b.push(value.len() as u8);
    b.extend_from_slice(value.as_bytes());
    b
}

/// A literal header with incremental indexing, new name.
fn lit_indexed(name: &str, value: &str) -> Vec<u8> {
    let mut b = lit(name, value);
    b[0] = 0x40;
    b
}

fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in entries {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

/// The client side of a GET of `/a?x=1` (stream 1, ended by its HEADERS)
/// and a POST of "hello" (stream 3, a padded DATA frame).
fn client() -> Vec<u8> {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[(0x3, 100), (0x4, 65535)]));
    let mut h = vec![0x82, 0x86]; // :method GET, :scheme http
    h.extend(lit(":path", "/a?x=1"));
    h.extend(lit_indexed(":authority", "Example.com:8080"));
    h.extend(lit("user-agent", "test/1"));
    h.extend(lit("accept", "*/*"));
    h.extend(lit("cookie", "a=1"));
    c.extend(frame(HEADERS, END_STREAM | END_HEADERS, 1, &h));
    let mut h = vec![0x83, 0x86, 0x84, 0xbe]; // POST, http, /, dynamic :authority
    h.extend(lit("content-type", "text/plain"));
    c.extend(frame(HEADERS, END_HEADERS, 3, &h));
    let mut d = vec![3]; // pad length
    d.extend_from_slice(b"hello");
    d.extend_from_slice(&[0, 0, 0]);
    c.extend(frame(DATA, PADDED | END_STREAM, 3, &d));
    c.extend(frame(0x8, 0, 0, &[0, 0, 1, 0])); // WINDOW_UPDATE
    c
}

/// The server side: a 200 with a two-frame body "<html>hi" for stream 1,
/// a 404 with no body for stream 3.
fn server() -> Vec<u8> {
    let mut s = settings(&[(0x3, 128)]);
    s.extend(frame(SETTINGS, ACK, 0, &[]));
    let mut h = vec![0x88]; // :status 200
    h.extend(lit("server", "Srv"));
    h.extend(lit("Date", "Mon, 06 Jul 2020"));
    s.extend(frame(HEADERS, END_HEADERS, 1, &h));
    s.extend(frame(DATA, 0, 1, b"<html>"));
    s.extend(frame(DATA, END_STREAM, 1, b"hi"));
    let h = [0x8d]; // :status 404
    s.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &h));
    s.extend(frame(0x6, 0, 0, &[0; 8])); // PING
    s
}

fn md5_hex(b: &[u8]) -> String {
    let mut h = Md5::new();
    h.update(b);
    util::hex(&h.finalize())
}

fn sha_hex(b: &[u8]) -> String {
    util::hex(&Sha256::digest(b))
}

/// Feeds client and server data, each cut into the given pieces.
fn run(c: &[&[u8]], s: &[&[u8]]) -> Value {
    let mut h = Harness::tcp(80);
    for p in c {
        h.feed(0, p);
    }
    for p in s {
        h.feed(1, p);
    }
    h.finish();
    h.json()
}

fn sorted(v: &Value) -> Value {
    let mut a: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    a.sort_by_key(|x| x.to_string());
    Value::Array(a)
}

#[test]
fn exchange_fields() {
    let j = run(&[&client()], &[&server()]);
    let http = &j["http"];
    assert_eq!(sorted(&j["protocol"]), json!(["http", "http2"]));
    assert_eq!(sorted(&http["method"]), json!(["GET", "POST", "PRI"]));
    // The preface as an HTTP/1 request.
    assert_eq!(http["uri"], json!(["*"]));
    assert_eq!(http["clientVersion"], json!(["2.0"]));
    assert_eq!(http["host"], json!(["example.com"]));
    assert_eq!(sorted(&http["path"]), json!(["/", "/a"]));
    assert_eq!(http["key"], json!(["x"]));
    assert_eq!(http["value"], json!(["1"]));
    assert_eq!(http["useragent"], json!(["test/1"]));
    assert_eq!(http["cookieKey"], json!(["a"]));
    assert_eq!(sorted(&http["statuscode"]), json!([200, 404]));
    assert_eq!(
        sorted(&http["requestHeader"]),
        json!(["accept", "content-type", "cookie", "user-agent"])
    );
    assert_eq!(
        sorted(&http["requestHeaderField"]),
        json!(["accept", "content-type", "cookie"])
    );
    assert_eq!(
        sorted(&http["requestHeaderValue"]),
        json!(["*/*", "a=1", "text/plain"])
    );
    assert_eq!(sorted(&http["responseHeader"]), json!(["date", "server"]));
    assert_eq!(
        sorted(&http["responseHeaderValue"]),
        json!(["mon, 06 jul 2020", "srv"])
    );
    assert_eq!(
        sorted(&http["md5"]),
        sorted(&json!([md5_hex(b"hello"), md5_hex(b"<html>hi")]))
    );
    assert_eq!(
        sorted(&http["sha256"]),
        sorted(&json!([sha_hex(b"hello"), sha_hex(b"<html>hi")]))
    );
    assert_eq!(http["bodyMagic"], json!(["text/html"]));
    assert!(http.get("serverVersion").is_none(), "{http}");
    assert_eq!(j["tags"], json!([]));
}

#[test]
fn split_at_every_byte() {
    let (c, s) = (client(), server());
    let whole = run(&[&c], &[&s]);
    // The first piece is classified: it holds the preface's request line.
    for at in 16..c.len() {
        assert_eq!(
            run(&[&c[..at], &c[at..]], &[&s]),
            whole,
            "client cut at {at}"
        );
    }
    for at in 1..s.len() {
        assert_eq!(
            run(&[&c], &[&s[..at], &s[at..]]),
            whole,
            "server cut at {at}"
        );
    }
    let bytes = |b: &[u8]| b.chunks(1).map(|c| c.to_vec()).collect::<Vec<_>>();
    let (cb, sb) = (bytes(&c), bytes(&s));
    let cs: Vec<&[u8]> = cb.iter().map(|v| &v[..]).collect();
    let ss: Vec<&[u8]> = sb.iter().map(|v| &v[..]).collect();
    let mut first = c[..16].to_vec();
    first.extend_from_slice(cs[16]);
    let mut pieces = vec![&first[..]];
    pieces.extend_from_slice(&cs[17..]);
    assert_eq!(run(&pieces, &ss), whole, "byte by byte");
}

/// Client data: the preface and one HEADERS frame made of `frames`.
fn client_with(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut c = PREFACE.to_vec();
    for f in frames {
        c.extend_from_slice(f);
    }
    c
}

#[test]
fn continuation_padding_and_priority() {
    let mut h = vec![0x82];
    h.extend(lit(":path", "/cont"));
    h.extend(lit("x-one", &"-".repeat(100)));
    h.extend(lit("x-two", "2"));
    // HEADERS padded with a priority, the block split over two
    // CONTINUATIONs.
    let mut p = vec![4]; // pad length
    p.extend_from_slice(&[0x80, 0, 0, 0, 16]); // exclusive dependency, weight
    p.extend_from_slice(&h[..10]);
    p.extend_from_slice(&[0; 4]);
    let c = client_with(&[
        frame(HEADERS, PADDED | PRIORITY | END_STREAM, 1, &p),
        frame(CONTINUATION, 0, 1, &h[10..50]),
        frame(CONTINUATION, END_HEADERS, 1, &h[50..]),
    ]);
    let j = run(&[&c], &[]);
    assert_eq!(j["http"]["path"], json!(["/cont"]));
    assert_eq!(
        sorted(&j["http"]["requestHeaderField"]),
        json!(["x-one", "x-two"])
    );
    assert_eq!(
        sorted(&j["http"]["requestHeaderValue"]),
        json!(["-".repeat(100), "2"])
    );
}

#[test]
fn header_values_are_clipped_like_arkime() {
    let mut h = vec![0x82];
    let long = "v".repeat(2000);
    let mut name = vec![0x00, 1, b'x', 0x7f];
    // 2000 = 127 + 1873: 1873 = 0x51 + (0x0e << 7)
    name.extend_from_slice(&[0xd1, 0x0e]);
    name.extend_from_slice(long.as_bytes());
    h.extend(name);
    let c = client_with(&[frame(HEADERS, END_HEADERS, 1, &h)]);
    let j = run(&[&c], &[]);
    assert_eq!(j["http"]["requestHeaderValue"], json!(["v".repeat(1024)]));
}

#[test]
fn interrupted_block_stops_header_decoding() {
    let mut h = vec![0x82];
    h.extend(lit(":path", "/x"));
    let mut later = vec![0x83];
    later.extend(lit(":path", "/never"));
    let c = client_with(&[
        frame(HEADERS, 0, 1, &h),
        frame(0x8, 0, 0, &[0, 0, 1, 0]),
        frame(CONTINUATION, END_HEADERS, 1, &[]),
        frame(HEADERS, END_HEADERS, 3, &later),
    ]);
    let j = run(&[&c], &[]);
    assert_eq!(j["http"]["method"], json!(["PRI"]));
    assert!(j["http"].get("path").is_none(), "{j}");
}

#[test]
fn push_promise_headers_are_response_headers() {
    let c = client_with(&[frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x82, 0x84])]);
    let mut pp = vec![0, 0, 0, 2]; // promised stream 2
    pp.extend_from_slice(&[0x82]);
    pp.extend(lit(":path", "/style.css"));
    pp.extend(lit("user-agent", "pushed/1"));
    let mut s = frame(PUSH_PROMISE, END_HEADERS, 1, &pp);
    s.extend(frame(HEADERS, END_HEADERS, 2, &[0x88]));
    s.extend(frame(DATA, END_STREAM, 2, b"body{}"));
    s.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x89]));
    let j = run(&[&c], &[&s]);
    let http = &j["http"];
    assert_eq!(sorted(&http["path"]), json!(["/", "/style.css"]));
    assert_eq!(http["responseHeader"], json!(["user-agent"]));
    assert_eq!(http["responseHeaderValue"], json!(["pushed/1"]));
    assert!(http.get("useragent").is_none(), "{http}");
    assert_eq!(http["md5"], json!([md5_hex(b"body{}")]));
    assert_eq!(sorted(&http["statuscode"]), json!([200, 204]));
}

#[test]
fn trailers_end_a_body() {
    let c = client_with(&[frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0x83, 0x84])]);
    let mut s = frame(HEADERS, END_HEADERS, 1, &[0x88]);
    s.extend(frame(DATA, 0, 1, b"grpc-message"));
    s.extend(frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        1,
        &lit("grpc-status", "0"),
    ));
    let j = run(&[&c], &[&s]);
    assert_eq!(j["http"]["md5"], json!([md5_hex(b"grpc-message")]));
}

#[test]
fn data_after_close_and_reset_streams_are_tagged() {
    let c = client_with(&[
        frame(HEADERS, END_HEADERS, 1, &[0x83, 0x84]),
        frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]),
        frame(DATA, END_STREAM, 1, b"late"),
    ]);
    let j = run(&[&c], &[]);
    assert_eq!(j["tags"], json!(["http2:data-frame-after-close"]));
    assert!(j["http"].get("md5").is_none(), "{j}");
}

#[test]
fn table_size_settings_bound_updates() {
    // The server allows the client a 8192-byte table; the client's update
    // to 8192 is accepted and an entry that needs it is kept.
    let big = "b".repeat(6000);
    let mut h = vec![0x3f, 0xe1, 0x3f]; // size update 8192
    h.extend_from_slice(&[0x82, 0x84]);
    let mut l = vec![0x40, 1, b'z', 0x7f];
    // 6000 = 127 + 5873: 5873 = 0x71 + (0x2d << 7)
    l.extend_from_slice(&[0xf1, 0x2d]);
    l.extend_from_slice(big.as_bytes());
    h.extend(l);
    let h2 = [0x83, 0x84, 0xbe]; // the entry, by index
    let mut c = client_with(&[frame(HEADERS, END_HEADERS, 1, &h)]);
    c.extend(frame(HEADERS, END_HEADERS, 3, &h2));
    let mut hh = Harness::tcp(80);
    hh.feed(0, &c[..PREFACE.len()]);
    // The server's SETTINGS arrive before the client's headers.
    hh.feed(1, &settings(&[(0x1, 8192)]));
    hh.feed(0, &c[PREFACE.len()..]);
    hh.finish();
    let j = hh.json();
    let clipped = big[..1024].to_string();
    assert_eq!(j["http"]["requestHeaderValue"], json!([clipped, clipped]));
    assert_eq!(sorted(&j["http"]["method"]), json!(["GET", "POST", "PRI"]));
    // Without the setting, the same update is refused and nothing is
    // decoded from then on.
    let j = run(&[&client_with(&[frame(HEADERS, END_HEADERS, 1, &h)])], &[]);
    assert_eq!(j["http"]["method"], json!(["PRI"]));
}

#[test]
fn hostile_frames_do_not_panic_and_stay_bounded() {
    let mut cases: Vec<Vec<u8>> = vec![
        // DATA whose padding is longer than the frame.
        frame(DATA, PADDED, 1, &[200, 1, 2]),
        // Padded frames of length 0.
        frame(DATA, PADDED, 1, &[]),
        frame(HEADERS, PADDED | END_HEADERS, 1, &[]),
        // HEADERS whose padding or priority is past the end.
        frame(HEADERS, PADDED | END_HEADERS, 1, &[9, 0x82]),
        frame(HEADERS, PRIORITY | END_HEADERS, 1, &[0, 0]),
        frame(PUSH_PROMISE, END_HEADERS, 1, &[0, 0]),
        // HPACK: a huge integer, a bad index, bad Huffman.
        frame(
            HEADERS,
            END_HEADERS,
            1,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        frame(HEADERS, END_HEADERS, 1, &[0xc0]),
        frame(HEADERS, END_HEADERS, 1, &[0x00, 0x81, 0xff, 0x00]),
        // A stray CONTINUATION, SETTINGS of odd length.
        frame(CONTINUATION, END_HEADERS, 7, &[0x82]),
        frame(SETTINGS, 0, 0, &[0, 1, 0, 0, 0]),
    ];
    // A frame length far past the end of the data.
    cases.push(vec![0xff, 0xff, 0xff, HEADERS, 0, 0, 0, 0, 1, 0x82]);
    cases.push(vec![0xff, 0xff, 0xff, DATA, 0, 0, 0, 0, 1, 0x82]);
    for case in cases {
        let c = client_with(std::slice::from_ref(&case));
        let j = run(&[&c], &[&case]);
        assert!(j["http"].get("path").is_none(), "{j}");
    }
    // A header block past the limit ends header decoding, DATA is still
    // hashed.
    let big = vec![0u8; MAX_HEADER_BLOCK + 1];
    let mut c = client_with(&[frame(HEADERS, 0, 1, &[0x82, 0x84])]);
    c.extend(frame(CONTINUATION, 0, 1, &big));
    c.extend(frame(CONTINUATION, END_HEADERS, 1, &[]));
    c.extend(frame(DATA, END_STREAM, 1, b"still hashed"));
    c.extend(frame(HEADERS, END_HEADERS, 3, &[0x82, 0x85]));
    let j = run(&[&c], &[]);
    assert_eq!(j["http"]["md5"], json!([md5_hex(b"still hashed")]));
    assert!(j["http"].get("path").is_none(), "{j}");
}

#[test]
fn streams_and_buffers_are_bounded() {
    let mut p = Http2::new(
        &HttpSettings::new(&Default::default()),
        Direction::FromSource,
    );
    let reg = fields::FieldRegistry::builtin();
    let config = crate::ProtocolConfig::default();
    let psettings = crate::analyzer::ParserSettings::new(&config);
    let meta = crate::SessionMeta {
        transport: crate::Transport::Tcp,
        src_ip: None,
        dst_ip: None,
        src_port: 1,
        dst_port: 80,
        ip_protocol: 6,
        first_ts_us: 0,
    };
    let mut fields = crate::SessionFields::new();
    let mut ids = crate::parsers::ExprIds::default();
    let mut state = None;
    let mut cx = ParseContext {
        fields: &mut fields,
        registry: &reg,
        meta: &meta,
        config: &config,
        scripts: None,
        script_state: &mut state,
        reclassify: false,
        ids: &mut ids,
        settings: &psettings,
    };
    p.parse(&mut cx, Direction::FromSource, PREFACE);
    for id in 0..500u32 {
        let f = frame(HEADERS, END_HEADERS, 2 * id + 1, &[0x83, 0x84]);
        p.parse(&mut cx, Direction::FromSource, &f);
        let d = frame(DATA, 0, 2 * id + 1, b"x");
        p.parse(&mut cx, Direction::FromSource, &d);
        assert!(p.streams.len() <= MAX_STREAMS);
    }
    // The newest streams are the ones kept.
    assert!(
        p.streams
            .iter()
            .all(|s| s.id > 2 * (500 - MAX_STREAMS as u32))
    );
    // A frame start waits in a buffer no larger than the frame.
    let f = frame(HEADERS, END_HEADERS, 1001, &[0x82; 100]);
    p.parse(&mut cx, Direction::FromSource, &f[..50]);
    assert_eq!(p.sides[0].pending.len(), 50);
    p.parse(&mut cx, Direction::FromSource, &f[50..]);
    assert!(p.sides[0].pending.is_empty());
    // A skipped frame is not buffered at all.
    let f = frame(0x7, 0, 0, &[0; 5000]);
    p.parse(&mut cx, Direction::FromSource, &f[..4000]);
    assert!(p.sides[0].pending.is_empty());
    p.parse(&mut cx, Direction::FromSource, &f[4000..]);
    assert!(matches!(p.sides[0].run, Run::Frames));
}

#[test]
fn frame_helpers() {
    let f = frame(HEADERS, 0x25, 0x8000_0003, &[1, 2, 3]);
    assert_eq!(
        frame_head(&f),
        Some(FrameHead {
            len: 3,
            kind: HEADERS,
            flags: 0x25,
            stream: 3
        })
    );
    assert_eq!(frame_head(&f[..8]), None);
    assert_eq!(wanted(&f[..4]), FRAME_HEADER);
    assert_eq!(wanted(&f), FRAME_HEADER + 3);
    assert_eq!(wanted(&frame(DATA, PADDED, 1, &[0; 40])), FRAME_HEADER + 1);
    assert_eq!(wanted(&frame(DATA, 0, 1, &[0; 40])), FRAME_HEADER);
    assert_eq!(fragment(PADDED, &[2, 7, 8, 0, 0], 0), Some(&[7u8, 8][..]));
    assert_eq!(fragment(PADDED, &[5, 7], 0), None);
    assert_eq!(fragment(0, &[1, 2, 3, 4, 9], 4), Some(&[9u8][..]));
    assert_eq!(fragment(0, &[1, 2], 4), None);
}

/// Both directions of one real connection: `nghttp` (nghttp2 1.52) asking
/// `nghttpd --no-tls -p /index.html=/style.css` for `/index.html?x=1` and
/// `/data.bin`, with Huffman-coded headers, the dynamic table, a server
/// push and interleaved DATA frames. The served files are made again here.
const NGHTTP_CLIENT: &[u8] = include_bytes!("testdata/nghttp-client.bin");
const NGHTTPD_SERVER: &[u8] = include_bytes!("testdata/nghttpd-server.bin");

fn served_files() -> [Vec<u8>; 3] {
    let index = b"<!DOCTYPE html>\n<html><head><link rel=\"stylesheet\" href=\"/style.css\"></head><body>moonwire</body></html>\n".to_vec();
    let data: Vec<u8> = (0..40000u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    let css = b"p{margin:0}".repeat(300);
    [index, data, css]
}

#[test]
fn real_nghttp2_connection_in_any_cut() {
    let md5s: Vec<String> = served_files().iter().map(|f| md5_hex(f)).collect();
    for size in [1, 7, 100, 1448, usize::MAX] {
        let cut = |b: &'static [u8], first: usize| {
            let mut v = vec![&b[..first.min(b.len())]];
            v.extend(b[first.min(b.len())..].chunks(size.min(b.len()).max(1)));
            v
        };
        let j = run(&cut(NGHTTP_CLIENT, 24), &cut(NGHTTPD_SERVER, size));
        let http = &j["http"];
        assert_eq!(
            sorted(&http["md5"]),
            sorted(&json!(md5s)),
            "pieces of {size}"
        );
        // `/style.css` was never asked for: it comes from the push promise.
        assert_eq!(
            sorted(&http["path"]),
            json!(["/data.bin", "/index.html", "/style.css"])
        );
        assert_eq!(http["key"], json!(["x"]));
        assert_eq!(sorted(&http["method"]), json!(["GET", "PRI"]));
        assert_eq!(http["host"], json!(["127.0.0.1"]));
        assert_eq!(http["useragent"], json!(["moonwire-test"]));
        assert_eq!(http["cookieKey"], json!(["a"]));
        assert_eq!(http["statuscode"], json!([200]));
        assert_eq!(http["bodyMagic"], json!(["text/html"]));
        let values = http["responseHeaderValue"].to_string();
        for v in [
            "text/html",
            "text/css",
            "40000",
            "3300",
            "nghttpd nghttp2/1.52.0",
        ] {
            assert!(values.contains(v), "{v} in {values}");
        }
        assert_eq!(j["tags"], json!([]));
    }
}

/// Payloads that look like header blocks more often than random bytes do:
/// indexed fields, literals with short names and values, size updates.
fn hpackish() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        (0x80u8..=0xff).prop_map(|b| vec![b]),
        ("[a-z-]{1,8}", "[ -~]{0,20}").prop_map(|(n, v)| lit(&n, &v)),
        ("[a-z-]{1,8}", "[ -~]{0,20}").prop_map(|(n, v)| lit_indexed(&n, &v)),
        (0x20u8..0x40).prop_map(|b| vec![b]),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Sequences of well-framed frames of every type with hostile flags,
    /// stream ids and header blocks, in either direction and cut
    /// anywhere, never panic and never leave more than the bounds held.
    #[test]
    fn framed_garbage_never_panics(
        frames in proptest::collection::vec(
            (0u8..12, proptest::prelude::any::<u8>(), 0u32..8, hpackish()), 0..24),
        cut in 1usize..200,
        to_server in proptest::prelude::any::<bool>(),
    ) {
        let mut c = PREFACE.to_vec();
        let mut s = Vec::new();
        for (kind, flags, stream, payload) in &frames {
            let f = frame(*kind, *flags, *stream, payload);
            if to_server { c.extend_from_slice(&f) } else { s.extend_from_slice(&f) }
        }
        let cpieces: Vec<&[u8]> = c.chunks(cut).collect();
        let spieces: Vec<&[u8]> = s.chunks(cut).collect();
        let j = run(&cpieces, &spieces);
        if let Some(list) = j["http"]["requestHeader"].as_array() {
            proptest::prop_assert!(list.len() <= 256);
        }
    }
}
