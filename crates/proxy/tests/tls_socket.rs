//! `Socket:connect_ssl` against a local rustls server with a self-signed
//! certificate (HAProxy's Lua sockets do not verify certificates).

mod common;
use common::*;

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tls_server() -> std::net::SocketAddr {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            let (s, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(s).await.unwrap();
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).await.unwrap();
            tls.write_all(format!("tls:{}\n", String::from_utf8_lossy(&buf)).as_bytes())
                .await
                .unwrap();
            tls.shutdown().await.ok();
        });
    });
    addr
}

#[test]
fn connect_ssl_talks_tls() {
    let b = backend();
    let tls = tls_server();
    let lua = format!(
        r#"
core.register_action("tls", {{"http-req"}}, function(txn)
  local s = core.tcp()
  s:settimeout(5)
  local ok, err = s:connect_ssl("localhost", {})
  if not ok then error("connect_ssl: " .. tostring(err)) end
  s:send("hello")
  txn.http:req_set_header("X-Tls", s:receive("*l"))
  s:close()
end)
"#,
        tls.port()
    );
    let p = start(
        &format!(
            "global\n  lua-load {{dir}}/s.lua\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:0\n  http-request lua.tls\n  default_backend be\nbackend be\n  server s {}\n",
            b.addr
        ),
        &[("s.lua", &lua)],
    );
    let r = get(p.addr("fe"), "/");
    assert!(
        r.body.contains("X-Tls: tls:hello"),
        "{} {:?}",
        r.body,
        p.logs()
    );
}
